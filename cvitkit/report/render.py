"""Write a built table as CSV, Markdown and LaTeX, each with its provenance.

Every file says which profile, runs, git commit(s), dates and device the measured cells come from,
and the source and provenance class of every reported number:

* CSV — ``# `` comment lines first (read back with :func:`read_table_csv`), then the table with
  numeric measured cells (empty where not measured) and reported cells exactly as transcribed;
* Markdown — a title, the caption, the table, then the provenance notes;
* LaTeX — ``%`` comment lines, then a ``table`` float (``Styler.to_latex``) with the caption and the
  notes under the tabular.

Measured columns are labelled ``<column> (measured)`` (``(kit config)`` for the kit's settings) and
reported ones ``<column> (reported: <class>)``; in Markdown and LaTeX every reported cell also
carries ``[n]``, the number of its source in the notes.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cvitkit.provenance import atomic_write_text

if TYPE_CHECKING:
    from cvitkit.report.build import TableResult

__all__ = ["format_value", "latex_escape", "provenance_lines", "read_table_csv", "to_csv_text", "to_latex_text",
           "to_markdown_text", "write_table"]


def format_value(value: Any, fmt: str) -> str:
    """A measured value as shown in Markdown/LaTeX (scores 2 decimals, counts as 1.2K / 3.4M, ...)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if fmt == "text":
        return str(value)
    value = float(value)
    if fmt in ("score", "points"):
        return f"{value:.2f}"
    if fmt == "fraction":
        return f"{value:.3f}"
    if fmt == "ms":
        return f"{value:.1f}"
    if fmt == "ratio":
        return f"{value:.2f}x"
    if fmt == "int":
        return f"{int(round(value))}"
    if fmt == "count":
        for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
            if abs(value) >= div:
                return f"{value / div:.2f}{suffix}"
        return f"{int(round(value))}"
    raise ValueError(f"unknown format {fmt!r}")


# --------------------------------------------------------------------------------------------------
# Provenance text
# --------------------------------------------------------------------------------------------------

def _join(values) -> str:
    values = [str(v) for v in values if v not in (None, "")]
    return ", ".join(values) if values else "unknown"


def measured_line(result: TableResult) -> str:
    info = result.measured_info
    if not info["run_ids"]:
        return "Measured: the kit has no run for this table (reported numbers only)."
    if not info["present"]:
        return (f"Measured (columns '(measured)'): no run of this table exists yet under {info['runs_dir']}; "
                f"every measured cell reads 'not run'.")
    dates = info["dates"]
    when = f"{dates[0]} to {dates[-1]}" if len(dates) > 1 else (dates[0] if dates else "unknown")
    text = (f"Measured (columns '(measured)'): profile {_join(info['profiles'])}; model {_join(info['models'])}; "
            f"runs from {info['runs_dir']}: {len(info['present'])} of {len(info['run_ids'])} present")
    if info["not_run"]:
        text += f" (not run: {', '.join(info['not_run'])})"
    text += f"; git commit(s) {_join(info['commits'])}; run dates {when}; device {_join(info['devices'])}."
    return text


def computed_lines(result: TableResult) -> list[str]:
    """One entry per distinct formula; columns that differ only by their task name share one entry."""
    groups: dict[str, list[str]] = {}
    for column in result.spec.columns:
        if column.compute is None or not column.formula:
            continue
        template = column.formula.replace(column.label, "<task>") if len(column.label) > 1 else column.formula
        groups.setdefault(template, []).append(column.label)
    out = []
    for template, labels in groups.items():
        text = template if len(labels) > 1 else template.replace("<task>", labels[0])
        out.append(f"{', '.join(labels)}: {text}")
    return out


def provenance_lines(result: TableResult) -> list[str]:
    """The notes every output carries: generation, measured provenance, reported sources, empty cells."""
    spec = result.spec
    lines = [f"cvitkit table {spec.id} ({spec.paper}): {spec.title}",
             f"Generated {result.generated} by cvitkit.report (generator commit {result.generator_commit or 'unknown'}).",
             measured_line(result)]
    formulas = computed_lines(result)
    if formulas:
        lines.append("How measured cells are computed: " + "; ".join(formulas) + ".")
    info = result.measured_info
    if info["parse_failures"]:
        lines.append("Parse failures at the last stage (unparsable answers, counted as wrong): "
                     + "; ".join(f"{k}: {v}" for k, v in info["parse_failures"].items()) + ".")
    if any(c.origin == "kit config" for c in spec.columns):
        lines.append("Columns '(kit config)' show the kit's setting from the run's config.json, not a measurement.")
    if result.reported_sources:
        lines.append(f"Reported (columns '(reported: <class>)'; results/paper/{spec.reported.file}): the papers' numbers "
                     "as transcribed, with their provenance class; they are NOT the kit's measurements.")
        for src in result.reported_sources:
            text = (f"[{src['n']}] {src['provenance']}: {src['source']} (transcribed from {src['transcribed_from']}); "
                    f"rows: {', '.join(src['rows'])}")
            if src["notes"]:
                text += "; notes: " + "; ".join(
                    note + ("" if rows == src["rows"] else f" ({', '.join(rows)})")
                    for note, rows in src["notes"].items())
            lines.append(text + ".")
    elif spec.reported is not None:
        lines.append(f"Reported: no number of this table is known (results/paper/{spec.reported.file} has none for "
                     "these rows and columns).")
    else:
        lines.append("Reported: no number of this table is known (shared/reference/paper_numbers.md); measured only.")
    if result.unknown_reported:
        lines.append("Reported columns left out (no number known): " + ", ".join(result.unknown_reported) + ".")
    lines.append("Cells: 'not run' = the kit run does not exist yet; '—' = not computable for this run "
                 "(reasons below); a blank reported cell = number unknown.")
    for reason, where in result.empty_reasons.items():
        lines.append(f"'—': {reason} ({'; '.join(where)}).")
    return lines


# --------------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------------

def to_csv_text(result: TableResult) -> str:
    head = [f"# {line}" for line in [*provenance_lines(result), f"Caption: {result.full_caption}"]]
    buffer = io.StringIO()
    result.data.to_csv(buffer, lineterminator="\n")
    return "\n".join(head) + "\n" + buffer.getvalue()


def read_table_csv(path: str | Path) -> pd.DataFrame:
    """Read a table CSV written by :func:`to_csv_text` (skips the ``#`` provenance lines)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    skip = 0
    while skip < len(lines) and lines[skip].startswith("#"):
        skip += 1
    return pd.read_csv(io.StringIO("\n".join(lines[skip:])), index_col=0, dtype=str, keep_default_na=False)


# --------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------

def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown_text(result: TableResult) -> str:
    spec = result.spec
    display = result.display.copy()
    display.index = [_md_cell(i) for i in display.index]
    display.index.name = spec.row_header
    display.columns = [_md_cell(c) for c in display.columns]
    display = display.map(_md_cell)
    lines = provenance_lines(result)
    out = [f"<!-- {lines[0]} | {lines[1]} Do not edit: regenerate with the notebook. -->",
           f"### {spec.title}", "", result.full_caption, "",
           display.to_markdown(disable_numparse=True), "", "**Notes**", ""]
    out += [f"- {line}" for line in lines[2:]]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------
# LaTeX
# --------------------------------------------------------------------------------------------------

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_UNICODE = {"—": "---", "–": "--", "−": "-", "×": r"$\times$", "→": r"$\rightarrow$", "≈": r"$\approx$",
                  "§": r"\S{}", "Δ": r"$\Delta$", "α": r"$\alpha$", "λ": r"$\lambda$", "θ": r"$\theta$",
                  "σ": r"$\sigma$", "τ": r"$\tau$", "≤": r"$\leq$", "≥": r"$\geq$", "·": r"$\cdot$",
                  "’": "'", "‘": "`", "“": "``", "”": "''"}


def latex_escape(text: Any) -> str:
    out = []
    for ch in str(text):
        out.append(_LATEX_SPECIAL.get(ch) or _LATEX_UNICODE.get(ch) or ch)
    return "".join(out)


def to_latex_text(result: TableResult) -> str:
    spec = result.spec
    display = result.display.reset_index()
    display.columns = [latex_escape(c) for c in display.columns]
    display = display.map(latex_escape)
    caption = latex_escape(f"{spec.title}. {result.full_caption}")
    body = display.style.hide(axis="index").to_latex(caption=caption, label=f"tab:{spec.id}", position="ht", hrules=True,
                                  environment="table", position_float="centering")
    body = body.replace("\\begin{tabular}", "\\resizebox{\\linewidth}{!}{%\n\\begin{tabular}", 1)
    body = body.replace("\\end{tabular}", "\\end{tabular}}", 1)
    lines = provenance_lines(result)
    notes = "\n".join(f"{latex_escape(line)}\\\\" for line in lines[2:])
    notes_block = f"\\par\\smallskip\n{{\\footnotesize\\raggedright\n{notes}\n}}\n\\end{{table}}"
    body = body.replace("\\end{table}", notes_block, 1)
    head = "\n".join(f"% {line}" for line in lines)
    return head + "\n% Needs \\usepackage{booktabs} and \\usepackage{graphicx}.\n" + body


def write_table(result: TableResult, out_dir: str | Path) -> list[Path]:
    """Write ``<id>.csv``, ``<id>.md`` and ``<id>.tex`` to ``out_dir`` (atomically); returns the paths."""
    out_dir = Path(out_dir)
    stem = result.spec.id
    return [atomic_write_text(out_dir / f"{stem}.csv", to_csv_text(result)),
            atomic_write_text(out_dir / f"{stem}.md", to_markdown_text(result)),
            atomic_write_text(out_dir / f"{stem}.tex", to_latex_text(result))]


def write_frame(frame: pd.DataFrame, folder: str | Path, stem: str) -> list[Path]:
    """A measured DataFrame as ``<folder>/<stem>.csv`` and a Markdown twin ``<stem>.md`` (the per-suite
    tables of ``03_evaluate``), both written atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [atomic_write_text(folder / f"{stem}.csv", frame.to_csv()),
            atomic_write_text(folder / f"{stem}.md", frame.to_markdown() + "\n")]

"""Written outputs: CSV / Markdown / LaTeX carry their provenance; figures are PNGs; the session API."""

from __future__ import annotations

import pytest

from cvitkit.report import ReportSession, build_paper_tables, read_table_csv
from cvitkit.report.render import format_value, latex_escape
from cvitkit.report.testing import write_fixture


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = write_fixture(tmp_path_factory.mktemp("render_fixture"))
    out = tmp_path_factory.mktemp("render_out")
    session = ReportSession("branchlora", profile="smoke", results_dir=root, out_dir=out)
    return session, session.build_all()


def test_every_table_is_written_in_three_formats_with_provenance(built):
    session, paths = built
    for table_id in session.tables:
        for suffix in (".csv", ".md", ".tex"):
            path = session.tables_dir / f"{table_id}{suffix}"
            assert path in paths and path.is_file(), path
    csv_text = (session.tables_dir / "branchlora_main.csv").read_text()
    assert csv_text.startswith("# cvitkit table branchlora_main")
    assert "profile fixture" in csv_text and "fixture0000" in csv_text and "2026-01-02" in csv_text
    assert "secondary: third-party machine-written paper note" in csv_text
    md = (session.tables_dir / "branchlora_main.md").read_text()
    assert "| ACC (measured)" in md and "ACC (reported: secondary)" in md and "44.20 [2]" in md
    assert "not run" in md and "NOT the kit's measurements" in md
    tex = (session.tables_dir / "branchlora_main.tex").read_text()
    assert "\\begin{table}" in tex and "\\caption{BranchLoRA: CoIN main results." in tex
    assert "\\label{tab:branchlora_main}" in tex and "% Measured (columns '(measured)'): profile fixture" in tex
    assert "paper\\_numbers.md" in tex  # escaped


def test_csv_reads_back_with_numbers_in_measured_columns(built):
    session, _ = built
    frame = read_table_csv(session.tables_dir / "branchlora_main.csv")
    assert float(frame.loc["BranchLoRA", "ACC (measured)"]) == pytest.approx(62.5)
    assert frame.loc["BranchLoRA", "ACC (reported: secondary)"] == "44.20"
    assert frame.loc["LwF", "ACC (measured)"] == "" and frame.loc["LwF", "run status"] == "not run"


def test_figures_and_index(built):
    session, paths = built
    pngs = [p for p in paths if p.suffix == ".png"]
    assert {p.name for p in pngs} >= {"branchlora_matrix_branchlora.png", "branchlora_forgetting.png",
                                      "branchlora_routing.png"}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    # a figure whose run is missing is skipped with a reason, never an error
    assert session.figure_results["branchlora_matrix_lora_ft"].path is not None
    index = (session.tables_dir / "branchlora_tables.md").read_text()
    assert "### BranchLoRA: CoIN main results" in index and "## Figures" in index


def test_missing_runs_give_not_run_figures(tmp_path):
    session = ReportSession("mllmcl", results_dir=tmp_path)
    result = session.figure("mllmcl_matrix_acl_mr_lora")
    assert result.path is None and result.reason.startswith("not run")


def test_build_paper_tables_with_a_profile_name(tmp_path, monkeypatch):
    monkeypatch.setenv("CVITKIT_RESULTS", str(tmp_path))
    paths = build_paper_tables("cram", "smoke")
    assert (tmp_path / "smoke" / "tables" / "cram_ucit.md") in paths
    assert not any(p.suffix == ".png" for p in paths)  # nothing run: no figure
    md = (tmp_path / "smoke" / "tables" / "cram_ucit.md").read_text()
    assert "87.23 [1]" in md and "no run of this table exists yet" in md


def test_formatting_helpers():
    assert format_value(None, "score") == "—"
    assert format_value(62.5, "score") == "62.50"
    assert format_value(123456, "count") == "123.46K" and format_value(3_500_000, "count") == "3.50M"
    assert format_value(2.5, "ratio") == "2.50x" and format_value(42.5, "ms") == "42.5"
    assert latex_escape("a_b & 5% §2 −1") == r"a\_b \& 5\% \S{}2 -1"


def test_write_frame_writes_a_csv_and_its_markdown_twin(tmp_path):
    import pandas as pd

    from cvitkit.report.render import write_frame

    frame = pd.DataFrame({"score": [1.5, None]}, index=pd.Index(["a", "b"], name="run"))
    csv, md = write_frame(frame, tmp_path / "tables", "x")
    assert csv.read_text() == "run,score\na,1.5\nb,\n"
    assert md.read_text() == frame.to_markdown() + "\n"
    pd.testing.assert_frame_equal(pd.read_csv(csv, index_col="run"), frame)

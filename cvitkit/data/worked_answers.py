"""Worked replies: the reply writes what it read from the picture, then the answer.

Some synthetic tasks ask for an answer two steps away from the picture: ACL Math shows ``3+4=?`` and
wants ``7`` (read the digits, then add); UCIT CLEVR asks how many objects are left when the red ones
are taken away (count them all and the red ones, then subtract); DCL Fin shows a candlestick chart and asks "Does the stock price
go down?" (see the trend, then compare it with the asked direction); CoIN Grounding wants the box of
"the red car" (find it, then write its corners). A letter-only, number-only or box-only training reply
supervises neither step on its own. A *worked* reply spells the steps out, so that each
is trained directly and can be checked apart (:func:`worked_agreement`):

=============================  ===========================  ===========================================
family (questions)             plain reply                  worked reply
=============================  ===========================  ===========================================
``math`` (digits)              ``7``                        ``3+4=7``: the expression read, its result
``math`` (objects, CLEVR)      ``3``                        ``5-2=3``: the objects counted (all of them,
                                                            those taken away or of the kind added to)
                                                            and the number the question adds, the result
``chart`` (trend, yes/no)      ``no``                       ``down up no``: asked, seen, the comparison
``chart`` (trend, letter)      ``B``                        ``up B``: the option's value, its letter
``ground`` (referring boxes)   ``[0.1, 0.6, 0.3, 0.9]``     ``bottom left [0.1, 0.6, 0.3, 0.9]``: the
                                                            third of the picture the object is in, its box
=============================  ===========================  ===========================================

The worked form needs what the picture shows, which a record does not carry: each training record is
drawn again from its seed (:func:`~cvitkit.data.build.draw_sample`), so it applies to the kit's own
synthetic data only. Multiple-choice tasks have theirs in :mod:`cvitkit.data.option_answers` (the
value is in the prompt). The learnability probe uses both (``python -m cvitkit.probe --answer-form
worked``); the suites keep the benchmarks' reply formats.
"""

from __future__ import annotations

from collections.abc import Sequence

from cvitkit.data.option_answers import AGREEMENT_COLUMNS, options_of, split_reply, value_first
from cvitkit.errors import ConfigError, DataError
from cvitkit.eval.text_norm import parse_box

#: Families with a worked reply, and the separator before each one's final answer (a box keeps its ``[``).
WORKED_FAMILIES = {"math": "=", "chart": " ", "ground": "["}

#: The thirds of the picture a worked grounding reply names, top to bottom and left to right.
ROWS, COLUMNS = ("top", "middle", "bottom"), ("left", "centre", "right")


def box_cell(box) -> str:
    """The third of the picture holding the centre of ``box`` (normalised ``x1, y1, x2, y2``): ``top left``,
    ``middle centre``, ... In the default scene layout (a 3x3 grid, one object per cell, e.g. CoIN
    Grounding's) the thirds are the grid's cells, so the cell is the coarse *where* and the box the fine
    one; in other layouts the third is still well defined, only coarser or finer than a cell."""
    def third(v: float) -> int:
        return min(2, max(0, int(v * 3)))

    x1, y1, x2, y2 = box
    return f"{ROWS[third((y1 + y2) / 2)]} {COLUMNS[third((x1 + x2) / 2)]}"


def check_worked(task) -> None:
    """Raise :class:`ConfigError` unless ``task`` (a :class:`~cvitkit.data.suites.TaskSpec`) has a worked form."""
    from cvitkit.data.synthetic import check_options

    opts = check_options(task.family, task.generator_options("train"))
    ok = task.family == "math" or (
        task.family == "chart" and list(opts.get("questions", [])) == ["trend"]
        and opts.get("answer_format") in ("yesno", "letter", "mixed")) or task.family == "ground"
    if not ok:
        hint = (" Multiple-choice tasks have theirs: --answer-form value_letter." if task.family == "mcq" else "")
        raise ConfigError(f"task {task.name} ({task.family}, generator {task.generator}) has no worked reply; worked "
                          "replies exist for math (digits or object counts), for chart trend questions answered "
                          f"yes/no or by letter, and for grounding.{hint}")


def worked_reply(sample, record: dict) -> str:
    """The worked reply to ``record``, from ``sample`` (the same sample drawn again with its truth)."""
    t = sample.truth
    if "op" in t:
        return f"{t['a']}{t['op']}{t['b']}={t['result']}"
    if t.get("format") == "yesno":
        return f"{t['asked']} {t['trend']} {sample.answer}"
    if t.get("format") == "letter":
        return value_first(record)["conversations"][1]["value"]
    if "expr" in t:
        return f"{box_cell(parse_box(sample.answer))} {sample.answer}"
    raise DataError(f"record {record.get('id', '?')!r}: its sample has no worked reply (truth {sorted(t)}). "
                    "Fix: use worked replies on math, chart trend and grounding tasks only.")


def worked_records(records: Sequence[dict], samples: Sequence, reply=None) -> list[dict]:
    """Copies of single-turn training ``records`` whose answer is the worked reply of its ``sample``
    (``reply(sample, record)``, :func:`worked_reply` by default; the scene-first form passes its own).

    A sample whose answer differs from its record's means the data on disk is not what the generator
    draws now (another seed or generator version): that raises :class:`DataError` naming the record."""
    reply = reply or worked_reply
    out = []
    for record, sample in zip(records, samples, strict=True):
        turns = record.get("conversations") or []
        where = f"record {record.get('id', '?')!r}"
        if len(turns) != 2:
            raise DataError(f"{where}: worked replies need one question and one answer turn. "
                            "Fix: use them on single-turn tasks only.")
        if turns[1]["value"].strip() != sample.answer:
            raise DataError(f"{where}: the answer on disk ({turns[1]['value']!r}) is not the one its seed draws "
                            f"({sample.answer!r}). Fix: rebuild the data with the kit's current generator.")
        out.append({**record, "conversations": [turns[0], {**turns[1], "value": reply(sample, record)}]})
    return out


def _reads(reply: str, sample, prompt: str) -> tuple[bool, bool]:
    """(reading right, answer follows the reading) for one worked reply."""
    t = sample.truth
    if "op" in t:
        expression, _, result = reply.partition("=")
        a, op, b = expression[:-2], expression[-2:-1], expression[-1:]
        follows = None
        if a.isdigit() and b.isdigit() and op in "+-x":
            follows = str({"+": int(a) + int(b), "-": int(a) - int(b), "x": int(a) * int(b)}[op])
        return expression.strip() == f"{t['a']}{t['op']}{t['b']}", follows is not None and result.strip() == follows
    if t.get("format") == "yesno":
        words = reply.split()
        if len(words) != 3:
            return False, False
        asked, seen, answer = words
        return (asked, seen) == (t["asked"], t["trend"]), answer == ("yes" if asked == seen else "no")
    if "expr" in t:
        named, box = " ".join(reply.partition("[")[0].split()), parse_box(reply)
        return named == box_cell(parse_box(sample.answer)), box is not None and named == box_cell(box)
    options = options_of(prompt)
    value, letter = split_reply(reply)
    return value == t["trend"], letter is not None and options.get(letter) == value


def worked_agreement(prompts: Sequence[str], replies: Sequence[str], samples: Sequence) -> dict:
    """Percent of worked replies whose reading is right, and whose answer follows their own reading.

    *Reading right*: the steps before the answer match the picture (math: the expression; yes/no: the
    asked direction and the trend; letter: the option's value; grounding: the third of the picture).
    *Answer follows its reading*: the answer is what the reply's own steps give, right or wrong (the
    result of the written expression; ``yes`` iff the written directions agree; the letter of the option
    equal to the written value; a box centred in the named third). A model that
    reads well but cannot take the last step scores high on the first and low on the second.
    """
    if not (len(prompts) == len(replies) == len(samples)) or not prompts:
        raise ValueError(f"need equally many prompts, replies and samples (at least one), got "
                         f"{len(prompts)}, {len(replies)} and {len(samples)}.")
    reads = [_reads(r, s, p) for p, r, s in zip(prompts, replies, samples)]
    n = len(reads)
    return dict(zip(AGREEMENT_COLUMNS, (100 * sum(a for a, _ in reads) / n, 100 * sum(b for _, b in reads) / n)))

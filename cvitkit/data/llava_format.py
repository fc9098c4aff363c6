"""LLaVA data format: reading and writing instruction files, and turning records into chat turns.

* Training file: a JSON **list** of ``{"id", "image"?, "conversations": [{"from": "human"|"gpt",
  "value"}...]}``; the image placeholder ``<image>`` sits in a human turn.
* Evaluation file: JSON list or JSONL of ``{"question_id", "image"?, "text", "answer"}``.

In memory the kit adds ``"task"`` (and ``"chunk"`` in streams) to every record, and an evaluation
record's ``text`` is the full prompt: ``<image>\\n`` + question + suffix.
"""

from __future__ import annotations

import json
from pathlib import Path

from cvitkit.errors import DataError

IMAGE_TOKEN = "<image>"
ROLES = {"human": "user", "gpt": "assistant"}


def read_records(path: str | Path) -> list[dict]:
    """Records of a JSON list or a JSONL file (detected from the content).

    A syntax error raises :class:`DataError` naming the file, the line (and record number for JSONL)
    and how to fix it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found. Fix: check the path (data layout: configs/data_layout.md).")
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if not stripped:
        raise DataError(f"{path}: the file is empty. Fix: write a JSON list of records (or one JSON object per line).")
    if stripped[0] == "[":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}. "
                            "Fix: repair the syntax there (a JSON list of records is expected).") from exc
        return data
    records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: malformed JSONL line {lineno} (record {len(records)}): {exc.msg} at column "
                            f"{exc.colno}. Fix: each line must hold one complete JSON object.") from exc
    if len(records) == 1 and isinstance(records[0], dict) and "conversations" not in records[0] \
            and "question_id" not in records[0]:
        raise DataError(f"{path}: holds one JSON object, not records. Fix: write a JSON list of records or JSONL.")
    return records


def dumps(records: list[dict]) -> str:
    """Canonical JSON text of ``records`` (sorted keys, 1-space indent): identical input, identical bytes."""
    return json.dumps(records, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_records(path: str | Path, records: list[dict], jsonl: bool = False) -> Path:
    """Write ``records`` atomically as a JSON list (default) or JSONL."""
    from cvitkit.provenance import atomic_write_text

    if jsonl:
        text = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records)
    else:
        text = dumps(records)
    return atomic_write_text(path, text)


def with_image_first(text: str) -> str:
    """LLaVA's placement: remove ``<image>`` and put it back at the very start, followed by a newline."""
    return IMAGE_TOKEN + "\n" + text.replace(IMAGE_TOKEN, "").strip()


def conversation_turns(record: dict) -> list[tuple[str, str]]:
    """``[(role, text), ...]`` with role ``user``/``assistant`` and ``<image>`` moved to the front of its turn."""
    turns = []
    for turn in record["conversations"]:
        value = turn["value"]
        if IMAGE_TOKEN in value:
            value = with_image_first(value)
        turns.append((ROLES[turn["from"]], value))
    return turns


def user_text(record: dict) -> str:
    """All user text of a train or eval record, ``<image>`` removed, turns joined with a newline.

    This is StrLoRA's routing text (the instruction without system prompt, image or answer).
    """
    if "conversations" in record:
        parts = [t["value"] for t in record["conversations"] if t["from"] == "human"]
    else:
        parts = [record["text"]]
    return "\n".join(p.replace(IMAGE_TOKEN, "").strip() for p in parts)


def eval_prompt(record: dict) -> str:
    """The user turn of an evaluation record, with ``<image>\\n`` first when the record has an image."""
    text = record["text"]
    if record.get("image"):
        return with_image_first(text)
    return text


def train_record(rid: str, image: str | None, question: str, answer: str, task: str | None = None) -> dict:
    """A single-turn LLaVA training record (``question`` already carries its suffix)."""
    rec = {"id": rid, "conversations": [{"from": "human", "value": (IMAGE_TOKEN + "\n" if image else "") + question},
                                        {"from": "gpt", "value": answer}]}
    if image:
        rec["image"] = image
    if task:
        rec["task"] = task
    return rec


def eval_record(qid: str, image: str | None, question: str, answer: str | list[str], task: str | None = None) -> dict:
    rec = {"question_id": qid, "text": (IMAGE_TOKEN + "\n" if image else "") + question, "answer": answer}
    if image:
        rec["image"] = image
    if task:
        rec["task"] = task
    return rec

"""Validation of LLaVA training and evaluation records.

Every problem raises :class:`~cvitkit.errors.DataError` with one message that names the file, the
record (index and id), what is wrong and how to fix it, e.g.::

    data/GQA/train.json: record 12 (id 'GQA_train_00012'): 2 <image> tokens in the human turns, the
    record has one image. Fix: use exactly 1 <image> (in the first human turn).

Validation stops at the first problem: one clear message is easier to act on than a hundred.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cvitkit.data.llava_format import IMAGE_TOKEN
from cvitkit.errors import DataError

ANSWER_TYPES = (str, int, float)


def _where(source, index: int, rid) -> str:
    return f"{source}: record {index} (id {rid!r})"


def fail(source, index: int, rid, problem: str, fix: str) -> DataError:
    """The kit's data error: file, record index and id, problem, fix."""
    return DataError(f"{_where(source, index, rid)}: {problem}. Fix: {fix}.")


def check_image(image_root: str | Path | None, image: str, source, index: int, rid,
                mode: str = "exists") -> Path | None:
    """Check that a record's image exists (``exists``) or decodes (``open``); ``none`` skips the check."""
    if mode == "none" or image_root is None:
        return None
    path = Path(image_root) / image
    if not path.is_file():
        raise fail(source, index, rid, f"image '{image}' not found (looked for {path})",
                   "put the image there, or correct the record's 'image' path (relative to the image folder "
                   f"{image_root})")
    if mode == "open":
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                im.verify()
        except (OSError, UnidentifiedImageError, SyntaxError) as exc:
            raise fail(source, index, rid, f"image {path} is unreadable ({exc})",
                       "replace the file with a valid image (PNG/JPEG) or remove the record") from exc
    return path


def _check_task(rec: dict, known, source, index: int, rid) -> None:
    if known is not None and "task" in rec and rec["task"] not in known:
        raise fail(source, index, rid, f"unknown task name {rec['task']!r}",
                   f"use one of the suite's task names: {', '.join(sorted(known))}")


def _check_image_field(rec: dict, source, index: int, rid) -> str | None:
    image = rec.get("image")
    if image is None:
        return None
    if not isinstance(image, str) or not image.strip():
        raise fail(source, index, rid, f"'image' must be a non-empty path string, got {image!r}",
                   "give one image path relative to the image folder (multi-image records are not supported), "
                   "or drop the key for a text-only sample")
    return image


def _check_id(rec: dict, key: str, seen: dict, source, index: int):
    rid = rec.get(key)
    if rid in (None, "") or isinstance(rid, bool) or not isinstance(rid, (str, int)):
        raise fail(source, index, rid, f"'{key}' must be a non-empty string or integer",
                   f"give every record a unique {key}")
    if str(rid) in seen:
        raise fail(source, index, rid, f"duplicate {key} (also used by record {seen[str(rid)]})",
                   f"make every {key} unique (predictions and scores are joined on it)")
    seen[str(rid)] = index
    return rid


def _check_turns(conv, image, source, i: int, rid) -> None:
    if not isinstance(conv, list) or len(conv) < 2:
        raise fail(source, i, rid, "'conversations' must be a list of at least two turns",
                   "give alternating {\"from\": \"human\"|\"gpt\", \"value\": ...} turns, human first")
    n_tokens = 0
    for j, turn in enumerate(conv):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise fail(source, i, rid, f"turn {j} lacks 'from' or 'value'",
                       "write each turn as {\"from\": \"human\"|\"gpt\", \"value\": \"...\"}")
        expected = "human" if j % 2 == 0 else "gpt"
        if turn["from"] != expected:
            raise fail(source, i, rid, f"turn {j} is from {turn['from']!r}, expected {expected!r}",
                       "turns must alternate human, gpt, human, ... ('from' is 'human' or 'gpt')")
        value = turn["value"]
        if not isinstance(value, str):
            raise fail(source, i, rid, f"turn {j} 'value' must be a string", "write the turn's text as a string")
        if expected == "gpt":
            if not value.strip():
                raise fail(source, i, rid, f"empty answer in turn {j}", "write the gpt answer, or drop the record")
            if IMAGE_TOKEN in value:
                raise fail(source, i, rid, f"{IMAGE_TOKEN} in gpt turn {j}", f"remove {IMAGE_TOKEN} from the answer")
        n_tokens += value.count(IMAGE_TOKEN)
    if len(conv) % 2:
        raise fail(source, i, rid, "the conversation ends with a human turn", "end it with the gpt answer")
    wanted = 1 if image else 0
    if n_tokens != wanted:
        has = "has one image" if image else "has no 'image'"
        fix = (f"use exactly 1 {IMAGE_TOKEN} (in the first human turn)" if image
               else f"remove {IMAGE_TOKEN} or add the record's 'image'")
        raise fail(source, i, rid, f"{n_tokens} {IMAGE_TOKEN} tokens in the human turns, the record {has}", fix)


def validate_train_records(records, source, image_root=None, check_images: str = "exists",
                           known_tasks: Iterable[str] | None = None) -> list[dict]:
    """Check a LLaVA training list; returns it unchanged. See the module doc for the error format."""
    if not isinstance(records, list):
        raise DataError(f"{source}: a training file must hold a JSON list of records, got {type(records).__name__}. "
                        "Fix: wrap the records in [ ... ].")
    known = set(known_tasks) if known_tasks is not None else None
    seen: dict[str, int] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise fail(source, i, None, f"a record must be a JSON object, got {type(rec).__name__}",
                       "write each sample as {\"id\": ..., \"image\": ..., \"conversations\": [...]}")
        for key in ("id", "conversations"):
            if key not in rec:
                raise fail(source, i, rec.get("id"), f"missing key '{key}'",
                           f"add '{key}' (LLaVA format: id, image, conversations)")
        rid = _check_id(rec, "id", seen, source, i)
        _check_task(rec, known, source, i, rid)
        image = _check_image_field(rec, source, i, rid)
        _check_turns(rec["conversations"], image, source, i, rid)
        if image:
            check_image(image_root, image, source, i, rid, check_images)
    return records


def _answer_ok(answer) -> bool:
    def one(a) -> bool:
        return isinstance(a, ANSWER_TYPES) and not isinstance(a, bool) and bool(str(a).strip())

    return one(answer) or (isinstance(answer, list) and bool(answer) and all(one(a) for a in answer))


def validate_eval_records(records, source, image_root=None, check_images: str = "exists",
                          known_tasks: Iterable[str] | None = None) -> list[dict]:
    """Check evaluation records (``question_id``, ``image``, ``text``, ``answer``); returns them unchanged."""
    if not isinstance(records, list):
        raise DataError(f"{source}: an evaluation file must hold a JSON list (or JSONL) of records, got "
                        f"{type(records).__name__}. Fix: write one record per line or a JSON list.")
    known = set(known_tasks) if known_tasks is not None else None
    seen: dict[str, int] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise fail(source, i, None, f"a record must be a JSON object, got {type(rec).__name__}",
                       "write each question as {\"question_id\": ..., \"image\": ..., \"text\": ..., \"answer\": ...}")
        for key in ("question_id", "text", "answer"):
            if key not in rec:
                fix = ("add the ground-truth answer (copy it from the benchmark's annotation file)" if key == "answer"
                       else f"add '{key}' (evaluation format: question_id, image, text, answer)")
                raise fail(source, i, rec.get("question_id"), f"missing key '{key}'", fix)
        rid = _check_id(rec, "question_id", seen, source, i)
        _check_task(rec, known, source, i, rid)
        image = _check_image_field(rec, source, i, rid)
        if not isinstance(rec["text"], str) or not rec["text"].replace(IMAGE_TOKEN, "").strip():
            raise fail(source, i, rid, "empty question 'text'", "write the question (prompt) in 'text'")
        if not _answer_ok(rec["answer"]):
            raise fail(source, i, rid, f"empty answer {rec['answer']!r}",
                       "give a non-empty answer string, or a non-empty list of reference strings")
        n_tokens = rec["text"].count(IMAGE_TOKEN)
        if n_tokens > 1 or (n_tokens == 1 and not image):
            has = "has one image" if image else "has no 'image'"
            raise fail(source, i, rid, f"{n_tokens} {IMAGE_TOKEN} tokens in 'text', the record {has}",
                       f"use at most one {IMAGE_TOKEN}, and only in records with an image")
        if image:
            check_image(image_root, image, source, i, rid, check_images)
    return records

"""The real benchmark files under a data root (layout: ``configs/data_layout.md``).

Each task's ``real`` entry in its suite YAML gives ``train``, ``test`` and ``image_root`` relative to
the data root; StrCVIT's training data are chunk files (``stream.real_chunks``). Records are
validated, then normalised to the kit's in-memory form:

* image paths are rewritten relative to the data root (``SuiteData.image_root``), since tasks keep
  their images in different folders;
* an evaluation prompt gets ``<image>\\n`` first when it has an image and lacks the token, and the
  task's ``prompt_suffix`` when the text does not already contain it (MLLM-CL adds it at inference;
  CoIN's files already carry it). Training records are kept as the benchmark wrote them;
* numeric answers become strings.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from cvitkit.data.llava_format import read_records, with_image_first
from cvitkit.data.loading import SuiteData, _select
from cvitkit.data.suites import Suite, TaskSpec
from cvitkit.data.validation import validate_eval_records, validate_train_records
from cvitkit.errors import DataError

LAYOUT_DOC = "configs/data_layout.md"


def _missing(suite: Suite, what: str, path: Path) -> DataError:
    return DataError(f"{suite.name}: {what} not found: expected {path}. Data comes from: {suite.real_source}. "
                     f"Fix: place the file there (layout: {LAYOUT_DOC}, section '{suite.name}'), or pass the "
                     "--data-root that contains it.")


def _require(suite: Suite, what: str, path: Path) -> Path:
    if not path.exists():
        raise _missing(suite, what, path)
    return path


def _suffix_for(task: TaskSpec, answer) -> str:
    """The suffix a prompt of ``task`` gets; the Fin rule picks yes/no vs letter by the answer."""
    suffixes = task.generator.get("suffixes")
    if suffixes:
        first = answer[0] if isinstance(answer, list) else answer
        return suffixes.get("yesno" if str(first).strip().lower() in ("yes", "no") else "letter", "")
    return task.prompt_suffix


def _rebase(image: str, image_root_rel: str) -> str:
    return str(PurePosixPath(image_root_rel) / image) if image_root_rel else image


def _normalise_eval(rec: dict, task: TaskSpec, image_root_rel: str) -> dict:
    rec = dict(rec)
    text = rec["text"]
    suffix = _suffix_for(task, rec["answer"])
    if suffix and suffix not in text:
        text = f"{text.rstrip()}\n{suffix}"
    if rec.get("image"):
        text = with_image_first(text)
        rec["image"] = _rebase(rec["image"], image_root_rel)
    ans = rec["answer"]
    rec["answer"] = [str(a) for a in ans] if isinstance(ans, list) else str(ans)
    rec["text"] = text
    rec["task"] = task.name
    return rec


def _normalise_train(rec: dict, task: str | None, image_root_rel: str) -> dict:
    rec = dict(rec)
    if rec.get("image"):
        rec["image"] = _rebase(rec["image"], image_root_rel)
    # per-task files: the suite's task name; chunk files: their own tag (StrCVIT), else "unknown"
    rec["task"] = task or rec.get("task") or "unknown"
    return rec


def load_real(suite: Suite, data_root: Path, check_images: str = "exists", tasks=None, streams=None,
              instructions: str = "default") -> SuiteData:
    """Read, validate and normalise the real files of ``suite`` under ``data_root``.

    ``instructions="diverse"`` reads each task's ``real.train_diverse`` training file (CoIN:
    ``Instruction_Type2``) instead of ``real.train``; the test files are the same.
    """
    data_root = Path(data_root)
    if not data_root.is_dir():
        raise DataError(f"data root {data_root} does not exist. Fix: pass the folder that holds the benchmark "
                        f"folders (layout: {LAYOUT_DOC}).")
    known = suite.task_names
    train, test = {}, {}
    for t in _select(suite, tasks):
        if not t.real.get("test"):
            raise DataError(f"{suite.name}: task {t.name} has no real files (synthetic only). Fix: run this suite "
                            "without --data-root.")
        img_rel = t.real.get("image_root", "")
        img_root = _require(suite, f"image folder of {t.name}", data_root / img_rel)
        path = _require(suite, f"{t.name} test file", data_root / t.real["test"])
        recs = validate_eval_records(read_records(path), path, img_root, check_images, known)
        test[t.name] = [_normalise_eval(r, t, img_rel) for r in recs]
        train_key = _train_key(suite, t, instructions)
        if t.real.get(train_key):
            what = f"{t.name} training file" + ("" if instructions == "default" else f" ({instructions} instructions)")
            path = _require(suite, what, data_root / t.real[train_key])
            recs = validate_train_records(read_records(path), path, img_root, check_images, known)
            train[t.name] = [_normalise_train(r, t.name, img_rel) for r in recs]
    chunks, composition = {}, {}
    if suite.stream is not None and suite.stream.real_chunks:
        chunks, composition = _load_chunks(suite, data_root, check_images, streams)
        if not any(t.real.get("train") for t in suite.tasks):  # per-task view of the longest stream
            longest = chunks[max(chunks)]
            for name in train or known:
                train[name] = [r for c in longest for r in c if r["task"] == name]
    return SuiteData(suite, data_root, train, test, chunks, composition, "real", data_root)


def _train_key(suite: Suite, task: TaskSpec, instructions: str) -> str:
    """``train``, or ``train_diverse`` for diverse instructions (an error when the suite has none)."""
    if instructions == "default":
        return "train"
    key = f"train_{instructions}"
    if not task.real.get(key):
        raise DataError(f"{suite.name}: task {task.name} has no real '{key}' file, so '{instructions}' instructions "
                        f"cannot be read from real data. Fix: add real.{key} (the training file with "
                        f"{instructions} instructions) to the task in configs/suites/{suite.name}.yaml "
                        f"(layout: {LAYOUT_DOC}), or run without data.instructions: {instructions}.")
    return key


def _load_chunks(suite: Suite, data_root: Path, check_images: str, streams):
    """StrCVIT chunk files ``data_001.json`` …; a stream of N chunks uses the first N files."""
    lengths = sorted(streams or suite.stream.lengths)
    img_rel = suite.tasks[0].real.get("image_root", "")
    img_root = _require(suite, "image folder", data_root / img_rel)
    loaded: list[list[dict]] = []
    for k in range(1, max(lengths) + 1):
        path = data_root / suite.stream.real_chunks.format(index=k)
        if not path.is_file():
            if k <= min(lengths):
                raise _missing(suite, f"training chunk {k}", path)
            break
        recs = validate_train_records(read_records(path), path, img_root, check_images, suite.task_names)
        loaded.append([{**_normalise_train(r, None, img_rel), "chunk": k} for r in recs])
    chunks = {n: loaded[:n] for n in lengths if n <= len(loaded)}
    composition = {n: [_counts(c) for c in ch] for n, ch in chunks.items()}
    return chunks, composition


def _counts(records: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        out[r["task"]] = out.get(r["task"], 0) + 1
    return out

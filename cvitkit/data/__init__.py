"""Data: LLaVA-format I/O, synthetic analogues of the benchmarks, suites, streams and collation.

>>> from cvitkit.data import DataConfig, build_suite, load_suite_data, task_stream, TrainCollator
>>> folder = build_suite("coin", DataConfig(), root)                       # doctest: +SKIP
>>> data = load_suite_data("coin", root)                                   # doctest: +SKIP
>>> for exp in task_stream(data):                                          # doctest: +SKIP
...     loader = DataLoader(exp.dataset, batch_size=8, collate_fn=TrainCollator(processor))

Modules (one concern each): ``config`` (DataConfig), ``suites`` (TaskSpec, Suite, YAML loading),
``llava_format`` (file I/O), ``validation`` (record checks), ``synthetic/`` (families × domains),
``stream_plan`` (stream composition), ``build`` (writing a suite), ``loading`` / ``real`` (reading
synthetic or real files), ``streams`` (experiences), ``dataset`` (torch Dataset), ``collate``
(model inputs and label masks), ``corpus`` (tokenizer text), ``card`` (dataset cards and figures).

Names are imported lazily (PEP 562) so that ``cvitkit.profiles`` can import :class:`DataConfig`
without pulling torch, PIL or the builder in.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DataConfig": "config",
    "TaskSpec": "suites", "StreamSpec": "suites", "Suite": "suites", "load_suite": "suites",
    "available_suites": "suites", "SCORERS": "suites",
    "read_records": "llava_format", "write_records": "llava_format", "IMAGE_TOKEN": "llava_format",
    "user_text": "llava_format",
    "validate_train_records": "validation", "validate_eval_records": "validation",
    "plan_stream": "stream_plan", "stream_properties": "stream_plan",
    "build_suite": "build", "build_suites": "build", "is_built": "build",
    "SuiteData": "loading", "load_suite_data": "loading", "load_profile_suite_data": "loading",
    "Experience": "streams", "task_stream": "streams", "chunk_stream": "streams",
    "RecordDataset": "dataset", "load_image": "dataset",
    "TrainCollator": "collate", "EvalCollator": "collate", "IGNORE_INDEX": "collate",
    "corpus": "corpus",
    "dataset_card": "card", "plot_composition": "card", "image_grid": "card", "composition_frame": "card",
    "suite_grid": "card",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"cvitkit.data.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cvitkit.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

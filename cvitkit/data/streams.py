"""Training streams in Avalanche's vocabulary: a stream is a list of *experiences*.

* :func:`task_stream` — task-incremental protocols (CoIN, MLLM-CL, UCIT, TriGap): one experience per
  task, in the paper's order, with the task's name and id (methods that claim task-agnostic
  inference must not read them at test time; oracle routing may, as a diagnostic).
* :func:`chunk_stream` — streaming protocols (StrCVIT): one experience per chunk; ``task_name`` and
  ``task_id`` are ``None`` because the learner is never told the task. Records still carry ``task``
  for analysis (per-task curves, routing statistics), never for training decisions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cvitkit.errors import DataError


@dataclass
class Experience:
    """One stage of a stream: the training records to learn before the next evaluation."""

    index: int
    task_name: str | None
    task_id: int | None
    records: list[dict]
    is_first: bool
    is_last: bool
    origin: dict = field(default_factory=dict)
    image_root: Path | None = None

    def __len__(self) -> int:
        return len(self.records)

    @property
    def dataset(self):
        """A :class:`~cvitkit.data.dataset.RecordDataset` over this experience's records."""
        from cvitkit.data.dataset import RecordDataset

        return RecordDataset(self.records, self.image_root, source=self.origin.get("source"))

    @property
    def task_counts(self) -> dict[str, int]:
        """Samples per task (analysis only)."""
        return dict(Counter(r.get("task") for r in self.records))


def task_stream(suite_data) -> list[Experience]:
    """One experience per task of ``suite_data.suite`` in the paper's order."""
    names = [t.name for t in suite_data.suite.tasks if t.name in suite_data.train]
    n = len(names)
    return [Experience(index=i, task_name=name, task_id=i, records=suite_data.train[name], is_first=i == 0,
                       is_last=i == n - 1, image_root=suite_data.image_root,
                       origin={"suite": suite_data.suite.name, "task": name, "source": f"{name}/train"})
            for i, name in enumerate(names)]


def chunk_stream(suite_data, n_chunks: int) -> list[Experience]:
    """The ``n_chunks``-chunk stream of a stream suite (task identity withheld)."""
    if n_chunks not in suite_data.chunks:
        have = sorted(suite_data.chunks) or "none"
        raise DataError(f"suite {suite_data.suite.name} has no {n_chunks}-chunk stream (available: {have}). "
                        "Fix: add the length to data.stream_lengths and rebuild, or pick an available one.")
    chunks = suite_data.chunks[n_chunks]
    comp = suite_data.composition.get(n_chunks)
    return [Experience(index=k, task_name=None, task_id=None, records=records, is_first=k == 0,
                       is_last=k == len(chunks) - 1, image_root=suite_data.image_root,
                       origin={"suite": suite_data.suite.name, "stream": n_chunks, "chunk": k + 1,
                               "composition": comp[k] if comp else dict(Counter(r.get("task") for r in records)),
                               "source": f"stream_{n_chunks}/chunk_{k + 1:03d}"})
            for k, records in enumerate(chunks)]

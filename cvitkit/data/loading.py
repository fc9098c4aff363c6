"""Load a suite's records into memory: :func:`load_suite_data` → :class:`SuiteData`.

The same call serves the synthetic analogue (a folder written by :func:`~cvitkit.data.build.build_suite`)
and the real benchmark files (``data_root`` set; paths from each task's ``real`` entry, see
:mod:`cvitkit.data.real`). Every file is validated on the way in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from cvitkit.data.build import MARKER
from cvitkit.data.llava_format import read_records
from cvitkit.data.suites import Suite, load_suite
from cvitkit.data.validation import validate_eval_records, validate_train_records
from cvitkit.errors import ConfigError, DataError


@dataclass
class SuiteData:
    """A suite's records. Image paths in records are relative to ``image_root``.

    ``train[task]`` are LLaVA training records (+ ``task``), ``test[task]`` evaluation records
    (``question_id``, ``image``, ``text``, ``answer``, ``task``); for stream suites ``chunks[N]`` is the
    list of chunk record lists of the N-chunk stream (+ ``chunk``) and ``composition[N]`` the samples
    per task per chunk.
    """

    suite: Suite
    image_root: Path
    train: dict[str, list[dict]]
    test: dict[str, list[dict]]
    chunks: dict[int, list[list[dict]]] = field(default_factory=dict)
    composition: dict[int, list[dict[str, int]]] = field(default_factory=dict)
    source: str = "synthetic"
    root: Path | None = None

    def sizes(self) -> dict[str, dict[str, int]]:
        return {t: {"train": len(self.train.get(t, [])), "test": len(self.test.get(t, []))}
                for t in self.suite.task_names}

    def dataset(self, task: str, split: str = "test"):
        """A :class:`~cvitkit.data.dataset.RecordDataset` over one task's split."""
        from cvitkit.data.dataset import RecordDataset

        records = (self.test if split == "test" else self.train)[self.suite.task(task).name]
        return RecordDataset(records, self.image_root, source=f"{self.suite.name}/{task}/{split}")


def _select(suite: Suite, tasks) -> list:
    if tasks is None:
        return suite.tasks
    return [suite.task(t) for t in tasks]  # unknown names raise ConfigError


def load_synthetic(suite: Suite, folder: Path, check_images: str = "exists", tasks=None,
                   streams=None) -> SuiteData:
    """Read a built synthetic suite from ``folder`` (``<root>/<suite>``)."""
    selected = _select(suite, tasks)
    if not (folder / MARKER).is_file():
        raise DataError(f"{folder}: the synthetic suite '{suite.name}' is not built (no {MARKER}). Fix: run "
                        f"cvitkit.data.build_suite('{suite.name}', data_cfg, root) or ./reproduce.sh --only data.")
    known = suite.task_names
    train, test = {}, {}
    for t in selected:
        path = folder / t.name / "train.json"
        train[t.name] = _tag(validate_train_records(read_records(path), path, folder, check_images, known), t.name)
        path = folder / t.name / "test.json"
        test[t.name] = _tag(validate_eval_records(read_records(path), path, folder, check_images, known), t.name)
    chunks, composition = {}, {}
    for sdir in sorted(folder.glob("stream_*"), key=lambda p: int(p.name.split("_")[1])):
        n = int(sdir.name.split("_")[1])
        if streams is not None and n not in streams:
            continue
        comp = json.loads((sdir / "composition.json").read_text())
        composition[n] = [c["counts"] for c in comp["chunks"]]
        chunks[n] = []
        for k in range(1, comp["n_chunks"] + 1):
            path = sdir / f"chunk_{k:03d}.json"
            recs = validate_train_records(read_records(path), path, folder, "none", known)
            chunks[n].append([{**r, "chunk": k} for r in recs])
    return SuiteData(suite, folder, train, test, chunks, composition, "synthetic", folder)


def _tag(records: list[dict], task: str) -> list[dict]:
    for r in records:
        r["task"] = task
    return records


def load_suite_data(suite: str | Suite, root: str | Path | None = None, data_root: str | Path | None = None, *,
                    profile: str | None = None, check_images: str = "exists", tasks=None,
                    streams=None, instructions: str = "default") -> SuiteData:
    """Records of ``suite``: real files when ``data_root`` is set, else the synthetic build under ``root``.

    ``root`` defaults to ``work_dir(profile)/data`` (profile ``mini`` when not given); ``tasks``
    restricts loading to some tasks; ``streams`` to some stream lengths; ``check_images`` is ``none``,
    ``exists`` or ``open`` (see :func:`~cvitkit.data.validation.check_image`). ``instructions`` picks the
    real training files (``diverse``: each task's ``real.train_diverse``); a synthetic build carries
    its style in its folder (:func:`~cvitkit.data.build.data_folder`), so ``root`` decides it there.
    """
    suite = load_suite(suite)
    if check_images not in ("none", "exists", "open"):
        raise ConfigError(f"check_images must be none, exists or open, got {check_images!r}.")
    if data_root:
        from cvitkit.data.real import load_real

        return load_real(suite, Path(data_root), check_images=check_images, tasks=tasks, streams=streams,
                         instructions=instructions)
    if root is None:
        from cvitkit.provenance import work_dir

        root = work_dir(profile or "mini") / "data"
    return load_synthetic(suite, Path(root) / suite.name, check_images, tasks, streams)


def load_profile_suite_data(profile, suite: str | Suite, build: bool = False) -> SuiteData:
    """The records of ``suite`` for ``profile`` (a :class:`~cvitkit.profiles.Profile`): the real files under
    its ``data_root`` when it has one, else the synthetic build in its work folder (written first when
    ``build``; without it a missing build raises the loader's error, which says how to build it)."""
    from cvitkit.data.build import build_suite, data_folder
    from cvitkit.provenance import work_dir

    suite = load_suite(suite) if isinstance(suite, str) else suite
    if profile.data_root:
        return load_suite_data(suite, data_root=profile.data_root, instructions=profile.data.instructions)
    root = data_folder(work_dir(profile.name) / "data", profile.data)
    if build:
        build_suite(suite, profile.data, root)
    return load_suite_data(suite, root=root)

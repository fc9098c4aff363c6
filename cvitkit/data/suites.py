"""Suites: the papers' benchmarks as ordered lists of tasks (``configs/suites/<name>.yaml``).

A :class:`Suite` keeps each paper's task names, order and scoring rule, and maps every task to a
synthetic analogue (a *family*: the kind of question, × a *domain*: the visual style) and to the
relative paths of the real benchmark files (used when a data root is given).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cvitkit.config import from_dict, load_yaml, option
from cvitkit.errors import ConfigError
from cvitkit.profiles import REPO_ROOT

SUITE_DIR = REPO_ROOT / "configs" / "suites"
PROTOCOLS = ("task_incremental", "stream")

#: Scorer names shared with :mod:`cvitkit.eval.scorers` (protocols.md §9).
SCORERS = (
    "exact_match", "exact_match_nospace", "vqa_exact", "vqa_soft", "substring", "substring_nospace",
    "bounded_substring", "bidirectional_substring", "option_letter", "ocrbench", "iou", "point_in_box", "anls",
    "relaxed_accuracy", "numeric", "cider", "caption_avg", "mapqa_partial", "final_answer",
)
_TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class TaskSpec:
    """One task of a suite: the paper's name, its synthetic analogue and its scoring rule."""

    name: str = option(help="The paper's task name (table column), e.g. 'ScienceQA'; also the folder name.")
    family: str = option(help="Synthetic task family: the kind of question (classify, vqa, relation, ...).")
    domain: str = option(help="Synthetic visual domain: the image style (natural, remote, medical, ...).")
    scorer: str = option(help="Scorer name in cvitkit.eval.scorers (the benchmark's rule, protocols.md).")
    scorer_params: dict = option(help="Keyword arguments of the scorer, e.g. {threshold: 0.0} for ANLS.",
                                 factory=dict)
    prompt_suffix: str = option("", help="Instruction appended after the question (on a new line) at train and "
                                         "test time, e.g. the LLaVA short-answer instruction.")
    description: str = option("", help="One line: what the task asks (dataset cards, MR-LoRA router prompt).")
    letter: str = option("", help="MR-LoRA router letter of this task's expert ('' when unused).")
    generator: dict = option(help="Family/domain options of the synthetic generator; a 'test' mapping "
                                  "overrides options for the test split (non-IID protocols).", factory=dict)
    real: dict = option(help="Paths of the real files relative to the data root: train, test, image_root, and "
                             "train_diverse (training file with diverse instructions, e.g. CoIN Instruction_Type2).",
                        factory=dict)

    def __post_init__(self):
        if not _TASK_NAME.match(self.name):
            raise ConfigError(f"task name {self.name!r} must be letters, digits, '-', '_' or '.' "
                              "(it is a folder name).")
        if self.scorer not in SCORERS:
            raise ConfigError(f"task {self.name}: unknown scorer '{self.scorer}'. Valid scorers: {', '.join(SCORERS)}.")
        from cvitkit.data.synthetic import DOMAINS, FAMILIES, check_options

        if self.family not in FAMILIES:
            raise ConfigError(f"task {self.name}: unknown family '{self.family}'. "
                              f"Valid families: {', '.join(FAMILIES)}.")
        if self.domain not in DOMAINS:
            raise ConfigError(f"task {self.name}: unknown domain '{self.domain}'. Valid domains: {', '.join(DOMAINS)}.")
        if self.letter and not (len(self.letter) == 1 and self.letter.isupper()):
            raise ConfigError(f"task {self.name}: letter must be one upper-case letter or empty, got {self.letter!r}.")
        for split in ("train", "test"):
            check_options(self.family, self.generator_options(split), where=f"task {self.name}: generator")
        unknown = sorted(set(self.real) - {"train", "train_diverse", "test", "image_root"})
        if unknown:
            raise ConfigError(f"task {self.name}: unknown real-data key(s) {unknown}; valid: train, train_diverse, "
                              "test, image_root.")

    def generator_options(self, split: str) -> dict:
        """Generator options for ``split`` (``train`` or ``test``), with the test overrides applied."""
        opts = {k: v for k, v in self.generator.items() if k != "test"}
        if split == "test":
            opts.update(self.generator.get("test", {}))
        return opts


@dataclass
class StreamSpec:
    """A streaming protocol (StrCVIT): chunks that mix tasks, no task identity."""

    lengths: list[int] = option(help="Stream lengths in chunks (the paper reports 15, 20 and 25).",
                                factory=lambda: [15, 20, 25])
    ap_tasks: list[str] = option(help="Fixed set of tasks averaged in AP (the release averages 9).", factory=list)
    real_chunks: str = option("", help="Real chunk files relative to the data root, a format string with "
                                       "{index} (1-based), e.g. 'StrCVIT/train/data_{index:03d}.json'.")


@dataclass
class Suite:
    """A benchmark: tasks in the paper's order and a protocol."""

    name: str = option(help="Suite name (file name under configs/suites/).")
    paper: str = option("", help="Paper / benchmark this suite reproduces.")
    protocol: str = option("task_incremental", help="task_incremental or stream.")
    description: str = option("", help="What the suite is, one paragraph.")
    tasks: list[TaskSpec] = option(help="Tasks in the paper's order.", factory=list)
    stream: StreamSpec | None = option(None, help="Stream settings (stream protocol only).")
    real_source: str = option("", help="Where the real files come from (shown when one is missing).")

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"suite {self.name}: protocol must be one of {PROTOCOLS}, got {self.protocol!r}.")
        if not self.tasks:
            raise ConfigError(f"suite {self.name}: no tasks. Add a 'tasks:' list.")
        names = [t.name for t in self.tasks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"suite {self.name}: duplicate task name(s) {dup}. Task names must be unique.")
        letters = [t.letter for t in self.tasks if t.letter]
        if len(letters) != len(set(letters)):
            raise ConfigError(f"suite {self.name}: router letters must be unique, got {letters}.")
        if self.protocol == "stream":
            if self.stream is None:
                raise ConfigError(f"suite {self.name}: protocol 'stream' needs a 'stream:' section "
                                  "(lengths, ap_tasks).")
            for t in self.stream.ap_tasks:
                self.task(t)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def task(self, name: str) -> TaskSpec:
        """The task called ``name``; an unknown name raises :class:`ConfigError` listing the valid ones."""
        for t in self.tasks:
            if t.name == name:
                return t
        raise ConfigError(f"suite {self.name} has no task '{name}'. Its tasks: {', '.join(self.task_names)}.")


def available_suites() -> list[str]:
    """Names of the shipped suites (``configs/suites/*.yaml``)."""
    return sorted(p.stem for p in SUITE_DIR.glob("*.yaml"))


def load_suite(name: str | Path | Suite) -> Suite:
    """Read ``configs/suites/<name>.yaml`` (strict keys), or a suite YAML given by path (a custom suite);
    a :class:`Suite` is returned unchanged."""
    if isinstance(name, Suite):
        return name
    name = str(name)
    path = Path(name) if name.endswith((".yaml", ".yml")) else SUITE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown suite '{name}': no {path}. Available suites: {', '.join(available_suites())}.")
    data = load_yaml(path)
    data.setdefault("name", path.stem)
    source = str(path.relative_to(REPO_ROOT)) if path.resolve().is_relative_to(REPO_ROOT) else str(path)
    tasks = data.get("tasks") or []
    if not isinstance(tasks, list):
        raise ConfigError(f"{source}: 'tasks' must be a list of task mappings.")
    data["tasks"] = [from_dict(TaskSpec, t, source=f"{source}:tasks[{i}]") for i, t in enumerate(tasks)]
    return from_dict(Suite, data, source=source)

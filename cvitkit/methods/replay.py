"""Replay: LoRA-FT plus a small buffer of earlier samples mixed into each new task's data.

Task-incremental suites keep ``per_task`` samples of every finished task (uniformly drawn with a
seed, ids saved in the method state); streams have no task ids, so a reservoir of ``buffer_size``
samples is kept over everything seen (each sample has equal probability of being in the buffer).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from cvitkit.config import option
from cvitkit.errors import ConfigError
from cvitkit.methods.base import register_method
from cvitkit.methods.lora_ft import LoraFT, LoraFTConfig


@dataclass
class ReplayConfig(LoraFTConfig):
    per_task: int = option(20, help="Samples kept per finished task (MLLM-CL's replay files hold 20-30).")
    buffer_size: int = option(200, help="Reservoir size for streams (no task ids).")
    policy: str = option("auto", help="per_task, reservoir, or auto (per_task for task-incremental suites).")

    mini_preset: ClassVar[dict] = {"per_task": 20, "buffer_size": 100}

    def __post_init__(self):
        super().__post_init__()
        if self.policy not in ("auto", "per_task", "reservoir"):
            raise ConfigError(f"replay policy must be auto, per_task or reservoir, got {self.policy!r}.")


class ReplayBuffer:
    """A seeded buffer of record ids with task balance (per_task) or reservoir sampling."""

    def __init__(self, policy: str, per_task: int, size: int, seed: int):
        self.policy, self.per_task, self.size = policy, per_task, size
        self.rng = random.Random(seed)
        self.records: list[dict] = []
        self.seen = 0

    def add(self, records: list[dict], task: str | None) -> None:
        if self.policy == "per_task":
            chosen = self.rng.sample(records, min(self.per_task, len(records)))
            self.records.extend(chosen)
            return
        for record in records:  # reservoir sampling (Vitter's algorithm R)
            self.seen += 1
            if len(self.records) < self.size:
                self.records.append(record)
            else:
                j = self.rng.randrange(self.seen)
                if j < self.size:
                    self.records[j] = record

    def state(self) -> dict:
        return {"ids": [r["id"] for r in self.records], "seen": self.seen, "rng": list(self.rng.getstate()[1]),
                "rng_version": self.rng.getstate()[0]}

    def load(self, meta: dict, lookup: dict[str, dict]) -> None:
        self.records = [lookup[i] for i in meta["ids"]]
        self.seen = meta["seen"]
        self.rng.setstate((meta["rng_version"], tuple(meta["rng"]), None))


@register_method
class Replay(LoraFT):
    name = "replay"
    config_class = ReplayConfig

    def setup(self, model, processor):
        c = self.config
        policy = c.policy
        if policy == "auto":
            policy = "reservoir" if self.suite is not None and self.suite.protocol == "stream" else "per_task"
        self.buffer = ReplayBuffer(policy, c.per_task, c.buffer_size, seed=self.seed)
        self._all_records: dict[str, dict] = {}
        return super().setup(model, processor)

    def training_records(self, experience):
        return list(experience.records) + list(self.buffer.records)

    def after_experience(self, experience, records):
        for r in experience.records:
            self._all_records[r["id"]] = r
        self.buffer.add(list(experience.records), experience.task_name)

    def state(self):
        return {}, {"buffer": self.buffer.state()}

    def load_state(self, tensors, meta):
        self.buffer.load(meta["buffer"], self._all_records)

    def prepare_for_resume(self, finished):
        for experience in finished:  # the buffer state names record ids; map them back to records
            for r in experience.records:
                self._all_records[r["id"]] = r

    def statistics(self):
        tasks: dict[str, int] = {}
        for r in self.buffer.records:
            tasks[r.get("task", "?")] = tasks.get(r.get("task", "?"), 0) + 1
        return {"replay_buffer": {"size": len(self.buffer.records), "per_task": tasks}}

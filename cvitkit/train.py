"""The continual trainer: one loop for task-incremental suites and streams, driven by a method.

For each experience (a task, or a chunk of a stream) the trainer

1. seeds every random source from (seed, experience index), so a resumed run continues exactly as an
   uninterrupted one would;
2. lets the method prepare (``before_experience``), trains for the method's epochs with AdamW and a
   fresh per-experience schedule (through ``accelerate``: devices, mixed precision, gradient
   accumulation, several processes);
3. lets the method consolidate (``after_experience``), evaluates (tasks seen so far in a
   task-incremental suite; every task after each chunk of a stream), and
4. writes the stage folder atomically: trainable adapter state (never the frozen base), method state
   (tensors + JSON), scores, per-sample predictions, routing statistics, timings. The ``stage.json``
   marker is written last; a stage without it is redone on resume.

Stage folders live in ``<run_dir>/stages/NNN``; the accuracy matrix (``matrix.csv``) and the metrics
are rebuilt from them by :mod:`cvitkit.runner`.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from cvitkit.adapters.state import count_adapter_parameters, load_adapter_state, save_adapter_state
from cvitkit.errors import ConfigError
from cvitkit.eval.evaluate import TaskEvaluation, evaluate_task, write_predictions
from cvitkit.provenance import atomic_write_json
from cvitkit.train_config import TrainConfig


def experience_name(experience) -> str:
    """The row name of an experience in the accuracy matrix: its task, or ``chunk_NNN`` in a stream."""
    return experience.task_name or f"chunk_{experience.index + 1:03d}"


def experience_tasks(experience) -> list[str]:
    """Tasks present in an experience, in order of first appearance."""
    return list(dict.fromkeys(r.get("task") for r in experience.records))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def experience_seed(seed: int, index: int) -> int:
    return seed * 100_003 + index * 7_919 + 17


def build_scheduler(optimizer, schedule: str, warmup_ratio: float, total_steps: int):
    warmup = int(round(warmup_ratio * total_steps)) if schedule == "cosine" else 0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def clipped_step(loss: torch.Tensor, params, optimizer, scheduler, max_grad_norm: float = 1.0) -> None:
    """One plain optimizer step of the kit's stand-alone loops (base model, vision tower, router,
    probes): backward, clip the gradient norm of ``params``, step optimizer and schedule, clear grads."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


@dataclass
class StageRecord:
    index: int
    name: str
    scores: dict[str, dict]
    log: dict


class ContinualTrainer:
    """Runs a method over a sequence of experiences and evaluates after each one.

    Parameters
    ----------
    method : a set-up :class:`~cvitkit.methods.base.Method` (its ``model`` is adapted already).
    processor : the model's processor (tokenizer + image processor).
    tasks : ``{task_name: TaskSpec}`` for every task of the suite, in the suite's order.
    test_sets : ``{task_name: [eval records]}``.
    image_root : folder the records' image paths are relative to.
    run_dir : where the stage folders go.
    protocol : ``"task_incremental"`` or ``"stream"``.
    """

    def __init__(self, method, processor, tasks: dict, test_sets: dict[str, list[dict]], image_root,
                 run_dir: str | Path, config: TrainConfig, protocol: str = "task_incremental", log: Callable = print):
        self.method, self.processor, self.tasks, self.test_sets = method, processor, tasks, test_sets
        self.image_root, self.run_dir, self.config, self.protocol, self.log = image_root, Path(run_dir), config, \
            protocol, log
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        self.accelerator = Accelerator(
            mixed_precision=config.mixed_precision, gradient_accumulation_steps=config.grad_accum,
            cpu=not torch.cuda.is_available(),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
        self.device = self.accelerator.device

    # -- stage folders ----------------------------------------------------------------------------
    def stage_dir(self, index: int) -> Path:
        return self.run_dir / "stages" / f"{index:03d}"

    def finished_stages(self) -> list[int]:
        root = self.run_dir / "stages"
        if not root.is_dir():
            return []
        # A kill between writing NNN.tmp/stage.json and the rename leaves an unpublished folder: not finished.
        return sorted(int(p.parent.name) for p in root.glob("*/stage.json") if p.parent.name.isdigit())

    def load_stage(self, index: int) -> StageRecord:
        data = json.loads((self.stage_dir(index) / "stage.json").read_text())
        return StageRecord(index, data["name"], data["scores"], data["log"])

    # -- evaluation -------------------------------------------------------------------------------
    def _eval_tasks(self, seen: list[str]) -> list[str]:
        scope = self.config.eval_scope
        if scope == "auto":
            scope = "all" if self.protocol == "stream" or self.method.joint or not self.method.trains else "seen"
        return list(self.tasks) if scope == "all" else [t for t in self.tasks if t in seen]

    def evaluate(self, task_names: list[str], stage: str) -> dict[str, TaskEvaluation]:
        results = {}
        for name in task_names:
            records = self.test_sets[name]
            if self.config.max_eval_per_task:
                records = records[: self.config.max_eval_per_task]
            results[name] = evaluate_task(self.method, self.processor, records, self.tasks[name], self.image_root,
                                          batch_size=self.config.eval_batch_size,
                                          max_new_tokens=self.config.max_new_tokens,
                                          system_prompt=self.config.system_prompt, desc=f"{stage}: eval {name}")
        return results

    # -- training ---------------------------------------------------------------------------------
    def train_experience(self, experience) -> tuple[dict, list[dict]]:
        from torch.utils.data import DataLoader

        from cvitkit.data import RecordDataset, TrainCollator

        method, cfg = self.method, self.config
        records = method.training_records(experience)
        generator = torch.Generator().manual_seed(experience_seed(cfg.seed, experience.index))
        loader = DataLoader(RecordDataset(records, self.image_root), batch_size=cfg.batch_size, shuffle=True,
                            generator=generator, drop_last=False,
                            collate_fn=TrainCollator(self.processor, system_prompt=cfg.system_prompt))
        # Under several processes each sees its shard of the batches (accelerate's even_batches split).
        per_process = math.ceil(len(loader) / self.accelerator.num_processes)
        micro_steps = max(1, int(round(per_process * method.config.epochs)))
        total_steps = max(1, math.ceil(micro_steps / cfg.grad_accum))
        groups = method.param_groups()
        if not groups:
            raise ConfigError(f"method '{method.name}' has no trainable parameter in experience {experience.index}.")
        optimizer = torch.optim.AdamW(groups, weight_decay=method.config.weight_decay)
        schedule, warmup = method.lr_schedule(experience)
        scheduler = build_scheduler(optimizer, schedule, warmup, total_steps)
        method.before_training(experience, total_steps)
        acc = self.accelerator
        model, optimizer, loader, scheduler = acc.prepare(method.model, optimizer, loader, scheduler)
        model.train()
        losses, step_times, logs = [], [], []
        parts: dict[str, list[float]] = {}
        bar = tqdm(total=micro_steps, desc=f"train {experience_name(experience)}", leave=False, disable=None)
        step, t_step = 0, time.perf_counter()
        while step < micro_steps:
            for batch in loader:
                if step >= micro_steps:
                    break
                with acc.accumulate(model):
                    inputs = method.prepare_batch(batch, training=True)
                    inputs = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in inputs.items()}
                    outputs = model(**inputs)
                    loss, log = method.compute_loss(inputs, outputs, batch)
                    acc.backward(loss)
                    if acc.sync_gradients:
                        method.before_optimizer_step()
                        if cfg.max_grad_norm:
                            acc.clip_grad_norm_([p for g in groups for p in g["params"]], cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    if acc.sync_gradients:
                        method.after_step()
                losses.append(loss.detach().item())
                for k, v in log.items():
                    parts.setdefault(k, []).append(v)
                now = time.perf_counter()
                step_times.append(now - t_step)
                t_step = now
                step += 1
                bar.update(1)
                if step % (cfg.log_every * cfg.grad_accum) == 0 or step == micro_steps:
                    window = losses[-cfg.log_every * cfg.grad_accum:]
                    logs.append({"step": step, "loss": sum(window) / len(window)})
                    bar.set_postfix(loss=f"{logs[-1]['loss']:.3f}")
        bar.close()
        acc.wait_for_everyone()
        acc.free_memory()  # release the prepared optimizer/scheduler references of this experience
        return {"samples": len(records), "micro_steps": micro_steps, "optimizer_steps": total_steps,
                "loss_first": losses[0], "loss_last": sum(losses[-10:]) / len(losses[-10:]),
                "loss_curve": logs, "loss_parts": {k: sum(v) / len(v) for k, v in parts.items()},
                "step_seconds_median": statistics.median(step_times[1:] or step_times),
                "train_seconds": sum(step_times), "schedule": schedule,
                "lr": [g["lr"] for g in groups]}, records

    # -- the run ----------------------------------------------------------------------------------
    def run(self, experiences: list) -> list[StageRecord]:
        """Train and evaluate over ``experiences``, resuming after the last finished stage."""
        method, cfg = self.method, self.config
        method.n_experiences = len(experiences)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        finished = self.finished_stages()
        records: list[StageRecord] = [self.load_stage(i) for i in finished]
        offset = 1 if cfg.eval_initial or not method.trains else 0  # stage 0 = before training
        done_experiences = [e for e in experiences if e.index + offset in finished]
        if done_experiences:
            method.prepare_for_resume(done_experiences)
            last = self.stage_dir(finished[-1])
            load_adapter_state(method.model, last / "adapter.safetensors")
            self._load_method_state(last)
            self.log(f"resumed after stage {finished[-1]} ({records[-1].name})")
        seen = list(dict.fromkeys(t for e in done_experiences for t in experience_tasks(e)))

        if offset and 0 not in finished:
            seed_everything(experience_seed(cfg.seed, -1))
            records.append(self._finish_stage(
                0, "initial", self._eval_tasks(list(self.tasks)) if method.trains else list(self.tasks),
                {"trained": False}))
        if not method.trains:
            return records

        for experience in experiences:
            index = experience.index + offset
            if index in finished:
                continue
            seed_everything(experience_seed(cfg.seed, experience.index))
            t0 = time.time()
            method.before_experience(experience)
            train_log, trained_on = self.train_experience(experience)
            method.after_experience(experience, trained_on)
            seen.extend(t for t in experience_tasks(experience) if t not in seen)
            train_log.update(count_adapter_parameters(method.model), wall_seconds=time.time() - t0)
            name = experience_name(experience)
            records.append(self._finish_stage(index, name, self._eval_tasks(seen), train_log))
            self.log(f"[{name}] loss {train_log['loss_first']:.3f}→{train_log['loss_last']:.3f}; "
                     + ", ".join(f"{k} {v['score']:.1f}" for k, v in records[-1].scores.items()))
        return records

    def _finish_stage(self, index: int, name: str, tasks: list[str], log: dict) -> StageRecord:
        """Evaluate and write the stage in the main process; the others (``accelerate launch``) wait and read it."""
        acc = self.accelerator
        if acc.is_main_process:
            record = self._write_stage(index, name, self.evaluate(tasks, name), log)
        acc.wait_for_everyone()
        return record if acc.is_main_process else self.load_stage(index)

    def _write_stage(self, index: int, name: str, results: dict[str, TaskEvaluation], log: dict) -> StageRecord:
        """Write everything of a stage to a temporary folder, then rename it into place (atomic)."""
        final = self.stage_dir(index)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_adapter_state(self.method.model, tmp / "adapter.safetensors")
        tensors, meta = self.method.state()
        if tensors:
            from safetensors.torch import save_file

            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / "method.safetensors"))
        atomic_write_json(tmp / "method.json", meta)
        for task, res in results.items():
            write_predictions(tmp / "predictions" / f"{task}.jsonl", res.predictions)
        atomic_write_json(tmp / "statistics.json", self.method.statistics())
        scores = {t: r.summary() for t, r in results.items()}
        atomic_write_json(tmp / "stage.json", {"index": index, "name": name, "scores": scores, "log": log})
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        return StageRecord(index, name, scores, log)

    def _load_method_state(self, stage: Path) -> None:
        tensors = {}
        if (stage / "method.safetensors").is_file():
            from safetensors.torch import load_file

            tensors = load_file(str(stage / "method.safetensors"))
        meta = json.loads((stage / "method.json").read_text()) if (stage / "method.json").is_file() else {}
        self.method.load_state(tensors, meta)

"""MR-LoRA (MLLM-CL, Zhao et al., arXiv 2506.05453): one LoRA expert per task and an MLLM router.

**Experts (parameter isolation).** Task t gets its own peft LoRA adapter ``expert_<t-1>`` on every
adapted LM linear and its own copy of the projector:

.. math:: h = W_0 x + \\frac{\\alpha}{r} B_t A_t x, \\qquad \\text{image tokens} = \\mathrm{Proj}_t(v)

Each expert starts from the common base (A Kaiming-uniform from a per-expert seed, B = 0, projector =
the base projector), never from the previous expert, and is trained only on its task; when the next
task starts it is frozen (``requires_grad=False``) and never changes again, so experts do not forget.
The model holds one projector module; the method keeps one projector copy per expert (and one for
the router) in its state and copies the right one in before training or using an expert.

**Router.** The base model with its own LoRA adapter ``router`` (and its own projector copy), trained
as a generative classifier on ``router_shots`` samples of every task seen so far (seeded choice, ids
saved) to answer with the expert's letter to a prompt that lists the experts' letters and
descriptions (:func:`~cvitkit.routers.mr_lora.router_prompt`). Letters: ``TaskSpec.letter`` where
the suite defines it (DCL Fin=A, Sci=B, Med=C, AD=D, RS=E; ACL OCR=A, VP=B, Math=C, GUI=D), else the
first unused letter in task order. Parse rule and random fallback: :mod:`cvitkit.routers.mr_lora`.

**Two-stage inference** (:meth:`MRLoRA.generate`): (1) the router adapter and projector generate ≤
``router_max_new_tokens`` greedy tokens per sample → a letter; (2) samples are grouped by the chosen
expert, whose adapter and projector answer them. The cost is one extra generation per sample (the
router's prompt is longer than the task prompt: the expert list); ``statistics()['two_stage_cost']``
measures it. ``routing: oracle`` routes by the true task (the upper bound); no router is built.

Provenance: reference ``methods/mr_lora.md`` (release bjzhb666/MLLM-CL): rank 128, α 256, all LM
linears, projector trained per expert, lr 2e-5 (OCR 5e-6, VP 1e-5), per-task epochs §3.1, router
rank 128 / α 256, 20 shots, 40 epochs, lr 5e-6 (LoRA and projector), batch 32, cosine, warm-up 0.03,
greedy routing with ≤ 16 new tokens, the parse rule of ``model_agents_select_lora.py``.

Choices where the reference is open (each a config field where it can be switched):

* ``task_epochs`` — Sci trains 2 epochs: the evaluated checkpoint is ``Sci_llava_lora_ep2_new`` (the
  script says 3; MCITlib and DCAG use 2). Tasks missing from the mapping use ``epochs``. The ``mini``
  preset uses the uniform ``epochs`` of the kit's other methods, so all methods see the same data.
* ``router_init: fresh`` — the router is re-trained at every stage from the base (fresh LoRA, base
  projector) on the shots of all tasks seen so far: the release ships one router file per stage and
  its router script starts from the base model. ``continue`` starts from the previous router
  (MCITlib's choice). The DCL router's undocumented merged-LoRA initialisation is not reproduced.
* No router is trained at stage 1 (one expert: every sample goes to it); the release's router files
  start at task 2 for the same reason.
* ``router_epochs`` is the epoch count at the release's default of 20 shots; with
  ``router_epochs_by_shots`` other shot counts scale it as the release's sweep does
  (:func:`~cvitkit.routers.mr_lora.router_epochs_for`; 5 shots → 4×). ``mini`` uses 20 epochs at batch 16,
  the release's number of optimizer steps (40 epochs × 100 samples / 32 ≈ 20 × 100 / 16).
* ``router_system_prompt`` — the release's router prompt uses the vicuna_v1 template (LLaVA system
  prompt); ``mini`` drops it to keep the tiny model's sequences short.
* ``statistics()['expert_usage']`` has one pseudo-layer ``router`` (every layer uses the same expert).
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
import zlib
from collections import Counter, defaultdict
from contextlib import nullcontext
from dataclasses import dataclass
from typing import ClassVar

import torch

from cvitkit.adapters import add_lora, set_projector_trainable
from cvitkit.adapters.mr_lora import expected_parameters, load_projector, projector_module, projector_state
from cvitkit.config import option
from cvitkit.errors import ConfigError
from cvitkit.methods.base import PROJECTOR, Method, MethodConfig, register_method
from cvitkit.models.prompt import LLAVA_SYSTEM
from cvitkit.routers.mr_lora import (RouterPromptBuilder, encode_router_samples, fallback_rng, fit_router,
                                    parse_router_output, router_epochs_for)

#: Epochs per task in the release's training scripts (reference §3.1; Sci: see the module docstring).
RELEASE_TASK_EPOCHS = {"RS": 1.0, "Med": 3.0, "AD": 1.0, "Sci": 2.0, "Fin": 1.0,
                       "OCR": 3.0, "Math": 1.0, "VP": 1.0, "GUI": 3.0, "APP": 3.0}
#: LoRA learning rates that differ from the default 2e-5 in the release (projector stays 2e-5).
RELEASE_TASK_LR = {"OCR": 5e-6, "VP": 1e-5}


@dataclass
class MRLoRAConfig(MethodConfig):
    rank: int = option(128, help="LoRA rank of each task expert (release: 128).")
    alpha: float = option(256, help="LoRA alpha of each expert (release: 256, scaling 2).")
    lr: float = option(2e-5, help="Expert LoRA learning rate (release: 2e-5; per-task values in task_lr).")
    projector_lr: float = option(2e-5, help="Learning rate of each expert's projector (release: 2e-5).")
    task_epochs: dict = option(help="Epochs per task name (release §3.1); other tasks use 'epochs'.",
                               factory=lambda: dict(RELEASE_TASK_EPOCHS))
    task_lr: dict = option(help="Expert LoRA learning rate per task name; other tasks use 'lr'.",
                           factory=lambda: dict(RELEASE_TASK_LR))
    routing: str = option("mllm", help="mllm: the trained MLLM router; oracle: the true task's expert (upper bound).")
    router_rank: int = option(128, help="LoRA rank of the router (release: 128).")
    router_alpha: float = option(256, help="LoRA alpha of the router (release: 256).")
    router_shots: int = option(20, help="Router training samples per seen task (release: 20).")
    router_epochs: float = option(40.0, help="Router epochs at 20 shots per task (release: 40 on DCL, 35 on ACL).")
    router_epochs_by_shots: bool = option(True, help="Scale router_epochs with router_shots as the release's "
                                                     "sweep does (10/80, 20/40, 30/34, 50/20, 100/10).")
    router_batch_size: int = option(32, help="Router training batch (release: 8 GPUs x 4).")
    router_lr: float = option(5e-6, help="Router LoRA learning rate (release: 5e-6).")
    router_projector_lr: float = option(5e-6, help="Learning rate of the router's projector (release: 5e-6).")
    router_warmup_ratio: float = option(0.03, help="Warm-up fraction of the router's cosine schedule.")
    router_init: str = option("fresh", help="fresh: re-train the router from the base at each stage; continue: "
                                            "start from the previous stage's router (MCITlib).")
    router_max_new_tokens: int = option(16, help="Greedy tokens the router may generate (release: 16).")
    router_system_prompt: str = option(LLAVA_SYSTEM, help="System text of the router prompt (vicuna_v1).")

    mini_preset: ClassVar[dict] = {
        "rank": 8, "alpha": 16, "router_rank": 8, "router_alpha": 16, "task_epochs": {}, "task_lr": {},
        "router_epochs": 20, "router_batch_size": 16, "router_lr": 1e-3, "router_projector_lr": 1e-4,
        "router_system_prompt": "",
    }
    # A smoke run trains on tens of samples: 20 router epochs made the router 95 % of its time.
    smoke_preset: ClassVar[dict] = {"router_epochs": 2}

    def __post_init__(self):
        super().__post_init__()
        self.task_epochs, self.task_lr = dict(self.task_epochs), dict(self.task_lr)
        if self.routing not in ("mllm", "oracle"):
            raise ConfigError(f"routing must be 'mllm' or 'oracle', got {self.routing!r}.")
        if self.router_init not in ("fresh", "continue"):
            raise ConfigError(f"router_init must be 'fresh' or 'continue', got {self.router_init!r}.")
        if min(self.router_rank, self.router_shots, self.router_batch_size, self.router_max_new_tokens) <= 0 \
                or self.router_epochs <= 0:
            raise ConfigError("router_rank, router_shots, router_epochs, router_batch_size and "
                              "router_max_new_tokens must be positive.")
        bad = {k: v for k, v in {**self.task_epochs, **self.task_lr}.items()
               if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0}
        if bad:
            raise ConfigError(f"task_epochs / task_lr values must be positive numbers, got {bad}.")

    def effective_router_epochs(self) -> float:
        return router_epochs_for(self.router_shots, self.router_epochs) if self.router_epochs_by_shots \
            else self.router_epochs


def _seed(*parts) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode())


@register_method
class MRLoRA(Method):
    name = "mr_lora"
    config_class = MRLoRAConfig
    protocols = ("task_incremental",)

    # -- structure --------------------------------------------------------------------------------
    def setup(self, model, processor):
        c = self.config
        self.base_config = c
        self.experts: list[dict] = []  # {"name", "task", "letter", "description"} in task order
        self.projectors: dict[str, dict[str, torch.Tensor]] = {}
        self.shots: dict[str, list[dict]] = {}
        self._lookup: dict[str, dict] = {}
        self.image_root = None
        self.router_log: dict = {}
        self.builder = RouterPromptBuilder(processor.tokenizer, c.router_system_prompt)
        self._reset_eval_stats()
        super().setup(model, processor)
        self.base_projector = projector_state(self.model)
        if c.routing == "mllm":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.init_seed("router", 0))
                self.model = add_lora(model, c.router_rank, c.router_alpha, c.dropout, c.targets,
                                      adapter_name="router", train_projector=False)
            self.model.set_requires_grad("router", requires_grad=False)
        return self.model

    def init_seed(self, kind: str, index: int) -> int:
        """Seed of the initialisation of expert ``index`` or of the router at stage ``index``."""
        return _seed(self.seed, kind, index)

    def _letter(self, task: str) -> tuple[str, str]:
        spec = None
        if self.suite is not None and task in self.suite.task_names:
            spec = self.suite.task(task)
        used = {e["letter"] for e in self.experts}
        reserved = used | ({t.letter for t in self.suite.tasks if t.letter} if self.suite is not None else set())
        letter = spec.letter if spec is not None and spec.letter else \
            next(chr(c) for c in range(ord("A"), ord("Z") + 1) if chr(c) not in reserved)
        if letter in used:
            raise ConfigError(f"MR-LoRA: task {task} has router letter {letter}, already used by another expert.")
        return letter, (spec.description if spec is not None and spec.description else task)

    def _add_expert(self, task: str) -> dict:
        c = self.base_config
        k = len(self.experts)
        letter, description = self._letter(task)
        expert = {"name": f"expert_{k}", "task": task, "letter": letter, "description": description,
                  "epochs": float(c.task_epochs.get(task, c.epochs)), "lr": float(c.task_lr.get(task, c.lr))}
        with torch.random.fork_rng(devices=[]):  # every expert starts from the same base, with its own seed
            torch.manual_seed(self.init_seed("expert", k))
            self.model = add_lora(self.model, c.rank, c.alpha, c.dropout, c.targets, adapter_name=expert["name"],
                                  train_projector=c.train_projector)
        self.experts.append(expert)
        return expert

    def _activate(self, name: str, train: bool) -> None:
        """Make adapter ``name`` (an expert or ``router``) the only active one, with its projector."""
        self.model.set_adapter(name, inference_mode=not train)
        if self.base_config.train_projector:
            load_projector(self.model, self.projectors.get(name, self.base_projector))
        set_projector_trainable(self.model, train and self.base_config.train_projector)

    # -- lifecycle --------------------------------------------------------------------------------
    def before_experience(self, experience):
        super().before_experience(experience)
        if experience.task_name is None:
            raise ConfigError("MR-LoRA trains one expert per task and needs task boundaries (task-incremental suites).")
        expert = self._add_expert(experience.task_name)
        self._activate(expert["name"], train=True)  # no projector copy yet: it starts from the base one
        self.config = dataclasses.replace(self.base_config, epochs=expert["epochs"], lr=expert["lr"])

    def after_experience(self, experience, records):
        expert = self.experts[-1]
        if self.base_config.train_projector:
            self.projectors[expert["name"]] = projector_state(self.model)
        self._remember(experience)
        rng = random.Random(_seed(self.seed, "shots", expert["task"]))
        pool = list(experience.records)
        self.shots[expert["task"]] = rng.sample(pool, min(self.base_config.router_shots, len(pool)))
        trained = self.base_config.routing == "mllm" and len(self.experts) > 1
        self.router_log = self._train_router() if trained else {"trained": False}
        # Leave requires_grad marking what this stage trained, so the trainer's count is honest.
        self._activate(expert["name"], train=True)
        if trained:
            self.model.set_requires_grad("router", requires_grad=True)

    def _remember(self, experience) -> None:
        self.image_root = experience.image_root
        self._lookup.update({r["id"]: r for r in experience.records})

    def prepare_for_resume(self, finished):
        for experience in finished:
            self._remember(experience)
            self._add_expert(experience.task_name)
        for name in [e["name"] for e in self.experts] + (["router"] if self.base_config.routing == "mllm" else []):
            self.model.set_requires_grad(name, requires_grad=False)

    # -- router training --------------------------------------------------------------------------
    def _router_experts(self) -> list[tuple[str, str]]:
        return [(e["letter"], e["description"]) for e in self.experts]

    def _train_router(self) -> dict:
        c, stage = self.base_config, len(self.experts)
        letters = {e["task"]: e["letter"] for e in self.experts}
        records = [(r, letters[e["task"]]) for e in self.experts for r in self.shots[e["task"]]]
        samples = encode_router_samples(self.builder, self.processor, records, self._router_experts(),
                                        self.image_root)
        epochs = c.effective_router_epochs()
        steps = max(1, round(epochs * math.ceil(len(samples) / c.router_batch_size)))
        if c.router_init == "fresh" or not self.router_log.get("trained"):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.init_seed("router", stage))
                for module in self.model.modules():
                    if hasattr(module, "reset_lora_parameters") and "router" in getattr(module, "lora_A", {}):
                        module.reset_lora_parameters("router", True)
            self.projectors.pop("router", None)
        self._activate("router", train=True)
        trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        groups = [{"params": [p for n, p in trainable if PROJECTOR not in n], "lr": c.router_lr},
                  {"params": [p for n, p in trainable if PROJECTOR in n], "lr": c.router_projector_lr}]
        log = fit_router(self.model, samples, [g for g in groups if g["params"]], steps, c.router_batch_size,
                         self.builder.pad_id, c.router_warmup_ratio, c.weight_decay,
                         seed=_seed(self.seed, "router-order", stage))
        if c.train_projector:
            self.projectors["router"] = projector_state(self.model)
        return {"trained": True, "stage": stage, "samples": len(samples), "epochs": epochs, **log,
                "shot_ids": {t: [r["id"] for r in rs] for t, rs in self.shots.items()}}

    # -- two-stage inference ----------------------------------------------------------------------
    def _reset_eval_stats(self) -> None:
        self._eval = {"n": Counter(), "correct": Counter(), "fallback": Counter(), "usage": Counter(),
                      "choices": defaultdict(Counter), "router_seconds": 0.0, "answer_seconds": 0.0,
                      "router_prompt_tokens": 0, "answer_prompt_tokens": 0, "router_new_tokens": 0}

    def decide(self, outputs: list[str], question_ids: list, tasks: list) -> list[tuple[int, bool]]:
        """Parse router outputs into ``(expert index, fallback)`` per sample and count them."""
        letters = [e["letter"] for e in self.experts]
        picks = []
        for text, qid, task in zip(outputs, question_ids, tasks):
            letter, fallback = parse_router_output(text, letters, fallback_rng(self.seed, len(self.experts), qid))
            picks.append((letters.index(letter), fallback))
            self._eval["fallback"][task] += int(fallback)
        return picks

    def route(self, inputs: dict, batch: dict) -> tuple[list[int], list[dict]]:
        """Stage 1: the expert index of every sample and its routing metadata."""
        tasks, qids, n = list(batch["tasks"]), list(batch["question_ids"]), inputs["input_ids"].shape[0]
        by_task = {e["task"]: k for k, e in enumerate(self.experts)}
        if self.base_config.routing == "oracle" or len(self.experts) == 1:
            mode = "oracle" if self.base_config.routing == "oracle" else "single"
            picks = []
            for qid, task in zip(qids, tasks):
                if task in by_task or len(self.experts) == 1:
                    picks.append((by_task.get(task, 0), False))
                else:  # the oracle has no expert for an unseen task: random, as the router's fallback
                    picks.append((fallback_rng(self.seed, len(self.experts), qid).randrange(len(self.experts)), True))
                    self._eval["fallback"][task] += 1
            outputs = [""] * n
        else:
            mode = "mllm"
            t0 = time.perf_counter()
            router_inputs = self.builder.build(batch, self._router_experts())
            device = inputs["input_ids"].device
            router_inputs = {k: v.to(device) for k, v in router_inputs.items()}
            self._activate("router", train=False)
            tok = self.processor.tokenizer
            out = self.model.generate(**router_inputs, max_new_tokens=self.base_config.router_max_new_tokens,
                                      do_sample=False, num_beams=1, pad_token_id=self.builder.pad_id,
                                      eos_token_id=tok.eos_token_id)
            new = out[:, router_inputs["input_ids"].shape[1]:]
            outputs = [t.strip() for t in tok.batch_decode(new, skip_special_tokens=True)]
            picks = self.decide(outputs, qids, tasks)
            self._eval["router_seconds"] += time.perf_counter() - t0
            self._eval["router_prompt_tokens"] += int(router_inputs["attention_mask"].sum())
            self._eval["router_new_tokens"] += int((new != self.builder.pad_id).sum())
        metadata = []
        for (k, fallback), text, task in zip(picks, outputs, tasks):
            expert = self.experts[k]
            self._eval["usage"][k] += 1
            self._eval["choices"][task][expert["letter"]] += 1
            if task in by_task:  # router accuracy only where the task has an expert to be routed to
                self._eval["n"][task] += 1
                self._eval["correct"][task] += int(expert["task"] == task)
            metadata.append({"expert": expert["letter"], "expert_task": expert["task"], "router_output": text,
                             "fallback": fallback, "routing": mode})
        return [k for k, _ in picks], metadata

    @torch.no_grad()
    def generate(self, inputs, batch, **generate_kwargs):
        if not self.experts:  # before the first task (eval_initial): the base model
            load_projector(self.model, self.base_projector)
            context = self.model.disable_adapter() if hasattr(self.model, "disable_adapter") else nullcontext()
            with context:
                out = self.model.generate(**inputs, **generate_kwargs)
            return out[:, inputs["input_ids"].shape[1]:], [{"expert": None} for _ in range(out.shape[0])]
        choice, metadata = self.route(inputs, batch)
        t0 = time.perf_counter()
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        has_image = (ids == self.builder.image_token_id).any(1).tolist()
        image_row = [sum(has_image[:i]) for i in range(len(has_image))]
        pieces: dict[int, torch.Tensor] = {}
        for k in sorted(set(choice)):
            rows = [i for i, c in enumerate(choice) if c == k]
            start = int(mask[rows].sum(0).nonzero()[0])  # drop columns that are padding in every row
            sub = {"input_ids": ids[rows, start:], "attention_mask": mask[rows, start:]}
            images = [image_row[i] for i in rows if has_image[i]]
            if images:
                sub["pixel_values"] = inputs["pixel_values"][images]
            self._activate(self.experts[k]["name"], train=False)
            out = self.model.generate(**sub, **generate_kwargs)[:, sub["input_ids"].shape[1]:]
            pieces.update({i: out[j] for j, i in enumerate(rows)})
            self._eval["answer_prompt_tokens"] += int(sub["attention_mask"].sum())
        self._eval["answer_seconds"] += time.perf_counter() - t0
        pad = generate_kwargs.get("pad_token_id", self.builder.pad_id)
        width = max(p.shape[0] for p in pieces.values())
        result = torch.full((len(choice), width), pad, dtype=ids.dtype, device=ids.device)
        for i, p in pieces.items():
            result[i, : p.shape[0]] = p
        return result, metadata

    # -- statistics and state ---------------------------------------------------------------------
    def parameter_summary(self) -> dict[str, int]:
        counts: Counter = Counter()
        for n, p in self.model.named_parameters():
            for name in [e["name"] for e in self.experts] + ["router"]:
                if "lora_" in n and f".{name}." in n:
                    counts[name] += p.numel()
        projector = sum(p.numel() for p in projector_module(self.model).parameters())
        copies = len(self.projectors) if self.base_config.train_projector else 0
        stored = sum(counts.values()) + projector * max(copies, 1)
        return {"experts_lora": sum(v for k, v in counts.items() if k != "router"), "router_lora": counts["router"],
                "projector": projector, "projector_copies": copies, "stored_total": stored}

    def expected_parameters(self) -> dict[str, int]:
        """The closed-form counts of :func:`~cvitkit.adapters.mr_lora.expected_parameters` for this model."""
        c = self.base_config
        shapes = [(m.in_features, m.out_features) for m in self.model.modules()
                  if isinstance(getattr(m, "lora_A", None), torch.nn.ModuleDict) and len(m.lora_A)]
        projector = sum(p.numel() for p in projector_module(self.model).parameters())
        return expected_parameters(shapes, len(self.experts), c.rank, c.router_rank, projector,
                                   mllm_router=c.routing == "mllm")

    def statistics(self):
        ev, stats = self._eval, {"routing": self.base_config.routing, "router_training": self.router_log,
                                 "experts": [dict(e) for e in self.experts], "parameters": self.parameter_summary()}
        total = sum(ev["usage"].values())
        if total:
            stats["router_accuracy"] = {t: 100.0 * ev["correct"][t] / n for t, n in ev["n"].items()}
            stats["router_accuracy"]["overall"] = 100.0 * sum(ev["correct"].values()) / max(1, sum(ev["n"].values()))
            stats["router_fallbacks"] = {**dict(ev["fallback"]), "overall": sum(ev["fallback"].values())}
            stats["router_choices"] = {t: dict(c) for t, c in ev["choices"].items()}
            stats["expert_usage"] = {"router": [ev["usage"][k] / total for k in range(len(self.experts))]}
            stats["two_stage_cost"] = {
                "samples": total, "router_seconds": ev["router_seconds"], "answer_seconds": ev["answer_seconds"],
                "router_prompt_tokens_mean": ev["router_prompt_tokens"] / total,
                "answer_prompt_tokens_mean": ev["answer_prompt_tokens"] / total,
                "router_new_tokens_mean": ev["router_new_tokens"] / total,
                "router_token_share": ev["router_prompt_tokens"] / max(1, ev["router_prompt_tokens"]
                                                                      + ev["answer_prompt_tokens"]),
                "note": "stage 1 is one extra greedy generation per sample with the router adapter"}
        self._reset_eval_stats()
        return stats

    def state(self):
        tensors = {f"projector/{name}/{n}": t for name, st in self.projectors.items() for n, t in st.items()}
        meta = {"experts": self.experts, "shots": {t: [r["id"] for r in rs] for t, rs in self.shots.items()},
                "router_log": self.router_log}
        return tensors, meta

    def load_state(self, tensors, meta):
        if [e["task"] for e in meta.get("experts", [])] != [e["task"] for e in self.experts]:
            raise ConfigError("MR-LoRA state: the saved experts do not match the finished tasks of this run.")
        self.experts = [dict(e) for e in meta["experts"]]
        self.projectors = defaultdict(dict)
        for key, t in tensors.items():
            _, name, param = key.split("/", 2)
            self.projectors[name][param] = t.to(self.base_projector[param].device)
        self.projectors = dict(self.projectors)
        self.shots = {t: [self._lookup[i] for i in ids] for t, ids in meta.get("shots", {}).items()}
        self.router_log = meta.get("router_log", {})

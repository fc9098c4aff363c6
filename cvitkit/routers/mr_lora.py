"""MR-LoRA's MLLM router: the routing prompt, its token layout, the parse rule and the shot schedule.

The router of MR-LoRA (MLLM-CL, arXiv 2506.05453) is the base MLLM with its own LoRA, trained as a
*generative classifier*: it reads the image and a routing prompt that lists the experts (letter and
description) followed by the user's question, and answers with one letter. This module holds the
pieces that do not depend on the method's state, so they can be tested on their own:

* :func:`router_prompt` — the kit's own wording of the release's idea (``model_agents_select_lora.py``:
  "you are a router, these are the experts, answer only with the letter, do not answer the question"),
  kept short because every routed sample pays for its tokens. Experts are listed in letter order, as
  the release lists A..E.
* :class:`RouterPromptBuilder` — turns an :class:`~cvitkit.data.EvalCollator` batch into router inputs.
  Training and inference go through the *same* function (the question text is recovered from the
  batch's ``routing_ids``, the image-token count from its ``input_ids``), so the router is tested on
  exactly the token layout it was trained on.
* :func:`parse_router_output` — the release's parse rule (reference §4): more than one character
  outside the letter set → a random expert; otherwise the first letter found checking A, B, C, … in
  that order; no valid letter → a random expert. The random pick is seeded per sample
  (:func:`fallback_rng`), so it does not depend on batching or on what was evaluated before.
* :func:`router_epochs_for` — the release's router-shot sweep trades shots for epochs
  (10/80, 20/40, 30/34, 50/20, 100/10): the number of sample passes stays roughly constant.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from cvitkit.lm_loss import IGNORE_INDEX, forward_with_loss

#: Router samples per task → router epochs in the release (``Train_dom/00_router_run.sh``).
RELEASE_SHOT_EPOCHS: dict[int, int] = {10: 80, 20: 40, 30: 34, 50: 20, 100: 10}
REFERENCE_SHOTS = 20


def router_epochs_for(shots: int, epochs_at_reference: float) -> float:
    """Router epochs for ``shots`` samples per task, scaled as in the release's sweep.

    The release's sample passes per task, ``shots × epochs``, are 800, 800, 1020, 1000, 1000 for
    10, 20, 30, 50, 100 shots. The product is interpolated linearly in ``shots`` between the table's
    points and held constant outside it (5 shots → 4× the epochs of 20 shots); the result is
    expressed relative to the 20-shot default, so a scaled-down ``epochs_at_reference`` scales the
    whole sweep.
    """
    points = sorted(RELEASE_SHOT_EPOCHS.items())
    product = [(s, s * e) for s, e in points]
    if shots <= product[0][0]:
        passes = product[0][1]
    elif shots >= product[-1][0]:
        passes = product[-1][1]
    else:
        for (s0, p0), (s1, p1) in zip(product, product[1:]):
            if s0 <= shots <= s1:
                passes = p0 + (p1 - p0) * (shots - s0) / (s1 - s0)
                break
    reference = REFERENCE_SHOTS * RELEASE_SHOT_EPOCHS[REFERENCE_SHOTS]
    return epochs_at_reference * (passes / shots) / (reference / REFERENCE_SHOTS)


def router_prompt(experts: Sequence[tuple[str, str]], question: str) -> str:
    """The user text of the router: the expert list (``(letter, description)``), then the question."""
    experts = sorted(experts)
    listing = "\n".join(f"{letter}: {description}" for letter, description in experts)
    letters = ", ".join(letter for letter, _ in experts)
    return (f"Route the question to one of {len(experts)} experts:\n{listing}\n"
            "Choose the expert for this image and question; do not answer the question.\n"
            f"Question: {question}\n"
            f"Answer with the letter of the expert only ({letters}).")


def parse_router_output(text: str, letters: Sequence[str], rng: random.Random) -> tuple[str, bool]:
    """``(letter, fallback)`` from the router's generated ``text`` (the release's rule, see above).

    ``letters`` are the letters of the experts that exist; a fallback draws one of them with ``rng``.
    """
    order = sorted(letters)
    text = text.strip()
    if sum(ch not in order for ch in text) <= 1:
        for letter in order:
            if letter in text:
                return letter, False
    return order[rng.randrange(len(order))], True


def fallback_rng(seed: int, stage: int, question_id) -> random.Random:
    """A generator for one sample's random fallback: same seed, stage and question → same expert."""
    return random.Random(f"mr_lora/{seed}/{stage}/{question_id}")


class RouterPromptBuilder:
    """Router inputs from an :class:`~cvitkit.data.EvalCollator` batch (vicuna_v1 layout).

    ``USER: <image>×N\\n{router prompt with the question} ASSISTANT:`` (+ `` {letter}</s>`` for training,
    the only supervised tokens). ``<image>`` is expanded to the number of image tokens the processor
    gave the sample in ``batch["input_ids"]``, exactly as the LLaVA processor expands it.
    """

    def __init__(self, tokenizer, system_prompt: str = ""):
        from cvitkit.models.prompt import render_vicuna_v1

        self.tokenizer, self.system_prompt, self._render = tokenizer, system_prompt, render_vicuna_v1
        self.image_token_id = tokenizer.convert_tokens_to_ids("<image>")
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else tokenizer.eos_token_id

    def questions(self, batch: dict) -> list[str]:
        ids, mask = batch["routing_ids"], batch["routing_mask"]
        return [self.tokenizer.decode(ids[i][mask[i].bool()].tolist(), skip_special_tokens=True,
                                      clean_up_tokenization_spaces=False) for i in range(ids.shape[0])]

    def _expand(self, ids: list[int], n_image: int, labels: list[int] | None = None) -> tuple[list[int], list[int]]:
        """Repeat each ``<image>`` id ``n_image`` times (its label, always ignored, with it)."""
        labels = labels if labels is not None else [IGNORE_INDEX] * len(ids)
        out, out_labels = [], []
        for t, lab in zip(ids, labels):
            repeat = n_image if t == self.image_token_id else 1
            out.extend([t] * repeat)
            out_labels.extend([lab] * repeat)
        return out, out_labels

    def sample(self, experts, question: str, n_image: int, letter: str | None = None) -> tuple[list[int], list[int]]:
        """``(input_ids, labels)`` of one sample; labels only on the answer when ``letter`` is given."""
        user = ("<image>\n" if n_image else "") + router_prompt(experts, question)
        prompt = self._render([("user", user)], system=self.system_prompt, add_generation_prompt=True)
        p_ids = self.tokenizer(prompt)["input_ids"]
        if letter is None:
            return self._expand(p_ids, n_image)
        full = self._render([("user", user), ("assistant", letter)], system=self.system_prompt)
        f_ids = self.tokenizer(full)["input_ids"]
        if f_ids[: len(p_ids)] != p_ids or len(f_ids) <= len(p_ids):
            raise ValueError("the router prompt is not a token prefix of prompt + letter; the tokenizer merges "
                             "across 'ASSISTANT:' and the answer, so the letter cannot be supervised alone.")
        labels = [IGNORE_INDEX] * len(p_ids) + f_ids[len(p_ids):]
        return self._expand(f_ids, n_image, labels)

    def build(self, batch: dict, experts, letters: Sequence[str] | None = None) -> dict:
        """Padded router inputs for ``batch``: left-padded for generation, right-padded with labels."""
        n_image = (batch["input_ids"] == self.image_token_id).sum(1).tolist()
        rows = [self.sample(experts, q, n, None if letters is None else letters[i])
                for i, (q, n) in enumerate(zip(self.questions(batch), n_image))]
        width = max(len(ids) for ids, _ in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        for i, (ids, lab) in enumerate(rows):
            span = slice(width - len(ids), width) if letters is None else slice(0, len(ids))
            input_ids[i, span] = torch.tensor(ids)
            attention[i, span] = 1
            if letters is not None:
                labels[i, span] = torch.tensor(lab)
        out = {"input_ids": input_ids, "attention_mask": attention}
        if letters is not None:
            out["labels"] = labels
        if batch.get("pixel_values") is not None:
            out["pixel_values"] = batch["pixel_values"]
        return out


def encode_router_samples(builder: RouterPromptBuilder, processor, records: Sequence[tuple[dict, str]], experts,
                          image_root) -> list[dict]:
    """Tensors of each ``(training record, target letter)``: the record goes through the evaluation
    collator first, so the router trains on exactly the token layout it will see at test time."""
    from cvitkit.data import EvalCollator, RecordDataset
    from cvitkit.data.llava_format import user_text

    items = []
    for r, _ in records:
        text = user_text(r)
        item = {"question_id": r["id"], "text": ("<image>\n" + text) if r.get("image") else text, "answer": "",
                "task": r.get("task")}
        if r.get("image"):
            item["image"] = r["image"]
        items.append(item)
    collate, dataset = EvalCollator(processor), RecordDataset(items, image_root)
    out = []
    for i, (_, letter) in enumerate(records):
        encoded = builder.build(collate([dataset[i]]), experts, letters=[letter])
        out.append({k: v[0] for k, v in encoded.items()})
    return out


def collate_router_samples(samples: list[dict], pad_id: int) -> dict:
    """Right-padded training batch of encoded router samples (as the trainer's collator pads)."""
    width = max(s["input_ids"].shape[0] for s in samples)
    batch = {"input_ids": torch.full((len(samples), width), pad_id, dtype=torch.long),
             "attention_mask": torch.zeros((len(samples), width), dtype=torch.long),
             "labels": torch.full((len(samples), width), IGNORE_INDEX, dtype=torch.long)}
    for i, s in enumerate(samples):
        n = s["input_ids"].shape[0]
        for key in ("input_ids", "attention_mask", "labels"):
            batch[key][i, :n] = s[key]
    pixels = [s["pixel_values"] for s in samples if "pixel_values" in s]
    if pixels:
        batch["pixel_values"] = torch.stack(pixels)
    return batch


def fit_router(model, samples: list[dict], groups: list[dict], steps: int, batch_size: int, pad_id: int,
               warmup_ratio: float = 0.03, weight_decay: float = 0.0, seed: int = 0,
               max_grad_norm: float = 1.0) -> dict:
    """Train the active (router) adapter on ``samples``: AdamW over ``groups``, cosine schedule with
    warm-up, a fresh seeded shuffle every epoch (the last batch of an epoch may be smaller)."""
    import time

    from cvitkit.train import build_scheduler, clipped_step

    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups, weight_decay=weight_decay)
    scheduler = build_scheduler(optimizer, "cosine", warmup_ratio, steps)
    generator = torch.Generator().manual_seed(seed)
    device = model.get_input_embeddings().weight.device
    model.train()
    order, losses, times = [], [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        if not order:
            order = torch.randperm(len(samples), generator=generator).tolist()
        chosen, order = order[:batch_size], order[batch_size:]
        batch = collate_router_samples([samples[i] for i in chosen], pad_id)
        _, loss = forward_with_loss(model, {k: v.to(device) for k, v in batch.items()})
        clipped_step(loss, params, optimizer, scheduler, max_grad_norm)
        losses.append(loss.item())
        times.append(time.perf_counter() - t0)
    model.eval()
    return {"steps": steps, "batch_size": batch_size, "loss_first": losses[0],
            "loss_last": sum(losses[-5:]) / len(losses[-5:]), "seconds": sum(times),
            "step_seconds_median": sorted(times)[len(times) // 2]}

"""Collators: records (with their PIL images) → model inputs, in the LLaVA-1.5 ``vicuna_v1`` layout.

Labels follow the LLaVA convention: every token is ``-100`` except the assistant answers and their
closing ``</s>`` (multi-turn: every gpt turn is supervised, every human turn masked; padding masked).

The processor expands each ``<image>`` into N image tokens. The label mask is computed on the plain
tokenisation (one ``<image>`` token) from the token lengths of rendered prefixes, then carried
through the expansion by walking both sequences; if the prefix property fails or the processor's
ids differ from the tokenizer's by anything other than the expansion, the collator raises instead of
silently supervising the wrong tokens.

Text-only records (no ``image``) are supported when the whole batch, or part of it, has no image:
``pixel_values`` then holds only the images present, and is absent when there are none.
"""

from __future__ import annotations

import numpy as np
import torch

from cvitkit.data.dataset import load_image
from cvitkit.data.llava_format import conversation_turns, eval_prompt, user_text
from cvitkit.errors import DataError
from cvitkit.lm_loss import IGNORE_INDEX
from cvitkit.models.prompt import render_vicuna_v1


def pad_to_square(image, processor):
    """LLaVA's ``image_aspect_ratio: pad``: centre the image on a square of the processor's mean colour."""
    from PIL import Image

    w, h = image.size
    if w == h:
        return image
    mean = getattr(processor.image_processor, "image_mean", None) or (0.5, 0.5, 0.5)
    side = max(w, h)
    canvas = Image.new(image.mode, (side, side), tuple(int(255 * m) for m in mean))
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


def _rid(item: dict):
    return item.get("id", item.get("question_id"))


class _Base:
    def __init__(self, processor, system_prompt: str = "", pad_images: bool = True, image_root=None):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.system_prompt = system_prompt
        self.pad_images = pad_images
        self.image_root = image_root
        self.image_token_id = self.tokenizer.convert_tokens_to_ids("<image>")
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.tokenizer.eos_token_id

    def _image(self, item: dict, index: int):
        img = item["pil_image"] if "pil_image" in item else load_image(item, self.image_root, index)
        if img is not None and self.pad_images:
            img = pad_to_square(img, self.processor)
        return img

    def _encode(self, texts: list[str], images: list) -> dict:
        out = self.processor(text=texts, images=images or None, padding=False)
        return out

    def _plain(self, text: str) -> list[int]:
        return self.tokenizer(text)["input_ids"]

    def _expand(self, plain: list[int], labels: list[int], expanded: list[int], item: dict) -> list[int]:
        """Carry ``labels`` (aligned with ``plain``) onto the processor's ``expanded`` ids."""
        out, p, e = [], 0, 0
        while e < len(expanded):
            if p < len(plain) and plain[p] == self.image_token_id and expanded[e] == self.image_token_id:
                while e < len(expanded) and expanded[e] == self.image_token_id:
                    out.append(IGNORE_INDEX)
                    e += 1
                p += 1
                continue
            if p >= len(plain) or plain[p] != expanded[e]:
                raise DataError(f"record {_rid(item)!r}: the processor's token ids differ from the tokenizer's at "
                                f"position {e} beyond the <image> expansion, so the label mask cannot be placed. "
                                "Fix: use a processor whose tokenizer is the one it wraps, without extra templates.")
            out.append(labels[p])
            p, e = p + 1, e + 1
        if p != len(plain):
            raise DataError(f"record {_rid(item)!r}: the processor dropped tokens of the prompt; cannot align labels.")
        return out

    def _routing(self, items: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = [self.tokenizer(user_text(it), add_special_tokens=False)["input_ids"] for it in items]
        width = max(1, max(len(x) for x in ids))
        out = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, x in enumerate(ids):
            out[i, : len(x)] = torch.tensor(x, dtype=torch.long)
            mask[i, : len(x)] = 1
        return out, mask

    @staticmethod
    def _pixels(encoded: dict):
        pv = encoded.get("pixel_values")
        if pv is None or len(pv) == 0:
            return None
        return torch.as_tensor(np.stack([np.asarray(x) for x in pv]), dtype=torch.float32)


class TrainCollator(_Base):
    """Right-padded training batches with LLaVA label masking.

    Returns ``input_ids``, ``attention_mask``, ``labels``, ``pixel_values`` (absent for a text-only
    batch), ``routing_ids`` / ``routing_mask`` (the user text without ``<image>``, right-padded with
    the pad token; StrLoRA's router input) and ``tasks`` (names, for analysis only).
    """

    def __init__(self, processor, system_prompt: str = "", max_length: int | None = None, pad_images: bool = True,
                 image_root=None):
        super().__init__(processor, system_prompt, pad_images, image_root)
        self.max_length = max_length

    def _labels(self, item: dict) -> tuple[str, list[int], list[int]]:
        turns = conversation_turns(item)
        full = render_vicuna_v1(turns, system=self.system_prompt)
        plain = self._plain(full)
        labels = [IGNORE_INDEX] * len(plain)
        for j, (role, _) in enumerate(turns):
            if role != "assistant":
                continue
            prompt = render_vicuna_v1(turns[:j], system=self.system_prompt, add_generation_prompt=True)
            answered = render_vicuna_v1(turns[: j + 1], system=self.system_prompt)
            a_ids, b_ids = self._plain(prompt), self._plain(answered)
            if plain[: len(a_ids)] != a_ids or plain[: len(b_ids)] != b_ids or len(b_ids) <= len(a_ids):
                raise DataError(f"record {_rid(item)!r}: tokenising the prompt and the prompt+answer of turn {j} does "
                                "not give a prefix of the full conversation, so the answer span is ambiguous. Fix: use "
                                "a tokenizer without merges across ':'/space boundaries, or report the tokenizer.")
            labels[len(a_ids): len(b_ids)] = plain[len(a_ids): len(b_ids)]
        return full, plain, labels

    def __call__(self, items: list[dict]) -> dict:
        texts, plains, labels, images = [], [], [], []
        for i, item in enumerate(items):
            full, plain, lab = self._labels(item)
            texts.append(full)
            plains.append(plain)
            labels.append(lab)
            img = self._image(item, i)
            if img is not None:
                images.append(img)
        enc = self._encode(texts, images)
        rows = []
        for item, plain, lab, ids in zip(items, plains, labels, enc["input_ids"]):
            ids = list(ids)
            lab = self._expand(plain, lab, ids, item)
            if self.max_length is not None and len(ids) > self.max_length:
                if ids[self.max_length - 1] == self.image_token_id or (
                        self.max_length < len(ids) and ids[self.max_length] == self.image_token_id):
                    raise DataError(f"record {_rid(item)!r}: max_length {self.max_length} cuts through the image "
                                    "tokens. Fix: raise max_length or shorten the prompt.")
                ids, lab = ids[: self.max_length], lab[: self.max_length]
            rows.append((ids, lab))
        width = max(len(ids) for ids, _ in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        label_t = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        for i, (ids, lab) in enumerate(rows):  # right padding
            input_ids[i, : len(ids)] = torch.tensor(ids)
            attention[i, : len(ids)] = 1
            label_t[i, : len(lab)] = torch.tensor(lab)
        routing_ids, routing_mask = self._routing(items)
        batch = {"input_ids": input_ids, "attention_mask": attention, "labels": label_t,
                 "routing_ids": routing_ids, "routing_mask": routing_mask, "tasks": [it.get("task") for it in items]}
        pixels = self._pixels(enc)
        if pixels is not None:
            batch["pixel_values"] = pixels
        return batch


class EvalCollator(_Base):
    """Left-padded generation prompts (``USER: <image>\\n… ASSISTANT:``) for evaluation records.

    Returns ``input_ids``, ``attention_mask``, ``pixel_values`` (absent for a text-only batch),
    ``routing_ids`` / ``routing_mask``, and ``question_ids``, ``answers``, ``tasks`` for scoring.
    """

    def prompt(self, item: dict) -> str:
        return render_vicuna_v1([("user", eval_prompt(item))], system=self.system_prompt, add_generation_prompt=True)

    def __call__(self, items: list[dict]) -> dict:
        texts = [self.prompt(it) for it in items]
        images = [img for i, it in enumerate(items) if (img := self._image(it, i)) is not None]
        enc = self._encode(texts, images)
        rows = [list(ids) for ids in enc["input_ids"]]
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, ids in enumerate(rows):  # left padding, as batched generate needs
            input_ids[i, width - len(ids):] = torch.tensor(ids)
            attention[i, width - len(ids):] = 1
        routing_ids, routing_mask = self._routing(items)
        batch = {"input_ids": input_ids, "attention_mask": attention, "routing_ids": routing_ids,
                 "routing_mask": routing_mask, "question_ids": [it["question_id"] for it in items],
                 "answers": [it["answer"] for it in items], "tasks": [it.get("task") for it in items]}
        pixels = self._pixels(enc)
        if pixels is not None:
            batch["pixel_values"] = pixels
        return batch

"""Evaluate a method on one task's test records: batched greedy generation, scoring, predictions.

Predictions are kept per sample (question id, prompt, output, reference, per-sample score and the
method's routing metadata) so every score can be recomputed from the saved JSONL files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from cvitkit.provenance import atomic_write_text


@dataclass
class TaskEvaluation:
    """The outcome of evaluating one task at one stage."""

    task: str
    score: float
    n: int
    parse_failures: int
    predictions: list[dict]
    seconds: float

    def summary(self) -> dict:
        return {"task": self.task, "score": self.score, "n": self.n, "parse_failures": self.parse_failures,
                "seconds": round(self.seconds, 2)}


def default_max_new_tokens(tokenizer, references: Sequence, margin: int = 4, cap: int = 128) -> int:
    """Longest tokenised reference answer plus a margin: short answers need not decode 128 tokens."""
    longest = 1
    for ref in references:
        for text in ([ref] if isinstance(ref, str) else list(ref)):
            longest = max(longest, len(tokenizer(str(text), add_special_tokens=False)["input_ids"]))
    return min(longest + margin, cap)


@torch.no_grad()
def evaluate_task(method, processor, records: list[dict], task, image_root, batch_size: int = 32,
                  max_new_tokens: int = 0, system_prompt: str = "", desc: str = "") -> TaskEvaluation:
    """Greedy-decode every record of ``task`` with ``method`` and score it with the task's scorer."""
    import time

    from torch.utils.data import DataLoader

    from cvitkit.data import EvalCollator, RecordDataset
    from cvitkit.eval.scorers import score

    t0 = time.time()
    model = method.model
    model.eval()
    tokenizer = processor.tokenizer
    if not max_new_tokens:
        max_new_tokens = default_max_new_tokens(tokenizer, [r["answer"] for r in records])
    loader = DataLoader(RecordDataset(records, image_root), batch_size=batch_size, shuffle=False,
                        collate_fn=EvalCollator(processor, system_prompt=system_prompt))
    device = next(p for p in model.parameters()).device
    predictions: list[dict] = []
    for batch in tqdm(loader, desc=desc or f"eval {task.name}", leave=False, disable=None):
        inputs = method.prepare_batch(batch, training=False)
        inputs = {k: v.to(device) if torch.is_tensor(v) else v for k, v in inputs.items()}
        new_tokens, routing = method.generate(
            inputs, batch, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        for i, text in enumerate(texts):
            predictions.append({"question_id": batch["question_ids"][i], "text": text.strip(),
                                "answer": batch["answers"][i], "task": task.name, "metadata": routing[i]})
    result = score(task.scorer, [p["text"] for p in predictions], [p["answer"] for p in predictions],
                   **(task.scorer_params or {}))
    for p, s in zip(predictions, result.per_sample):
        p["score"] = s
    return TaskEvaluation(task.name, float(result.score), result.n, result.parse_failures, predictions,
                          time.time() - t0)


def answer_profile(predictions: Sequence[dict]) -> dict:
    """How varied a model's answers to one task are: ``n`` questions, ``distinct`` answers (compared
    after stripping and lower-casing), the most frequent one with its share, and ``form_match``, the
    share answered in the form the reference has (:mod:`cvitkit.eval.forms`).

    A model that learned a task answers in many ways; one that collapsed onto its answer prior gives
    the same ``top`` answer to nearly every question (``top_share`` near 1), whatever its score. One
    that forgot how to answer the task gives the wrong form (a caption to a letter question)."""
    from collections import Counter

    from cvitkit.eval.forms import form_match

    counts = Counter(str(p.get("text", "")).strip().lower() for p in predictions)
    if not counts:
        return {"n": 0, "distinct": 0, "top": None, "top_share": None, "form_match": None}
    top, top_n = counts.most_common(1)[0]
    return {"n": len(predictions), "distinct": len(counts), "top": top, "top_share": round(top_n / len(predictions), 3),
            "form_match": round(form_match(predictions), 3)}


def write_predictions(path: str | Path, predictions: list[dict]) -> Path:
    """JSONL, one line per question (CoIN/MLLM-CL answer-file fields plus score and routing metadata)."""
    lines = [json.dumps(p, ensure_ascii=False, default=str) for p in predictions]
    return atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))

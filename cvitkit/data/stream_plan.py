"""Composition of a synthetic stream (StrCVIT analogue): how many samples of each task per chunk.

StrCVIT's chunks are "dynamic mixtures": tasks appear, recur and fade, and the learner is never told
which task a sample belongs to. The plan below reproduces those three properties, deterministically
for a seed:

* **appear** – tasks enter one after another (seeded order), entry points spread over the stream;
* **fade** – each task is active in a main window of about a third of the stream, with a triangular
  weight (rises, peaks, declines);
* **recur** – about half of the tasks whose window ends early come back later for one or two chunks
  at low weight, after at least one chunk of absence.

Counts per chunk are the chunk size split by weight (largest remainder, at least one sample per
active task), so no chunk is empty and every task appears in every stream length.
"""

from __future__ import annotations

import random


def _weights(tasks: list[str], n_chunks: int, rng: random.Random) -> dict[str, list[float]]:
    order = list(tasks)
    rng.shuffle(order)
    n_tasks = len(order)
    span = max(2, min(n_chunks, round(n_chunks * 0.35)))
    last_start = n_chunks - span
    weights = {t: [0.0] * n_chunks for t in tasks}
    ends = {}
    for j, task in enumerate(order):
        start = round(j * last_start / max(1, n_tasks - 1))
        for d in range(span):
            weights[task][start + d] = 1.0 + min(d, span - 1 - d)  # triangular: rise then fade
        ends[task] = start + span - 1
    # recurrence: tasks with room for a gap of >= 1 chunk and a comeback of 1-2 chunks
    eligible = [t for t in order if ends[t] + 2 < n_chunks]
    chosen = rng.sample(eligible, max(1, len(eligible) // 2)) if eligible else []
    for task in sorted(chosen, key=order.index):
        first = rng.randint(ends[task] + 2, n_chunks - 1)
        for k in range(first, min(n_chunks, first + rng.randint(1, 2))):
            weights[task][k] = 1.0
    return weights


def _split(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Largest-remainder split of ``total`` by ``weights``, at least 1 per task (ties by name)."""
    active = sorted(t for t, w in weights.items() if w > 0)
    if total < len(active):
        active = sorted(active, key=lambda t: (-weights[t], t))[:total]
    wsum = sum(weights[t] for t in active)
    raw = {t: (total - len(active)) * weights[t] / wsum for t in active}
    counts = {t: 1 + int(raw[t]) for t in active}
    rest = total - sum(counts.values())
    for t in sorted(active, key=lambda t: (-(raw[t] - int(raw[t])), t))[:rest]:
        counts[t] += 1
    return counts


def plan_stream(tasks: list[str], n_chunks: int, chunk_size: int, seed: int = 0) -> list[dict[str, int]]:
    """Per chunk, ``{task: n_samples}`` (tasks in ``tasks`` order, zero counts omitted)."""
    if n_chunks < 2 or chunk_size < 1 or not tasks:
        raise ValueError(f"need >= 2 chunks, chunk_size >= 1 and tasks (got {n_chunks}, {chunk_size}, {tasks})")
    rng = random.Random(f"stream/{seed}/{n_chunks}/{'|'.join(tasks)}")
    weights = _weights(tasks, n_chunks, rng)
    plan = []
    for k in range(n_chunks):
        counts = _split(chunk_size, {t: weights[t][k] for t in tasks})
        plan.append({t: counts[t] for t in tasks if counts.get(t)})
    return plan


def stream_properties(plan: list[dict[str, int]], tasks: list[str]) -> dict:
    """Summary used by tests and the dataset card: empties, tasks present, recurrences, first chunks."""
    present = [set(c) for c in plan]
    recurring = []
    for t in tasks:
        seen = [t in p for p in present]
        first = seen.index(True) if True in seen else None
        if first is not None:
            after_gap = any(seen[i] and not seen[i - 1] for i in range(first + 1, len(seen)))
            if after_gap:
                recurring.append(t)
    return {
        "n_chunks": len(plan),
        "empty_chunks": [i + 1 for i, c in enumerate(plan) if not sum(c.values())],
        "missing_tasks": [t for t in tasks if not any(t in p for p in present)],
        "recurring_tasks": recurring,
        "first_chunk": {t: next((i + 1 for i, p in enumerate(present) if t in p), None) for t in tasks},
        "tasks_per_chunk": [len(p) for p in present],
    }

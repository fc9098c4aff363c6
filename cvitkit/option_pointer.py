"""Text-only option-pointer probe: can the language model answer a multiple-choice question by letter?

Answering ``Which shape is in the diagram?  A. square  B. circle  C. star`` with ``B`` takes two
steps: find what the picture shows, then find the option that says it and emit *that option's
letter*. The second step is a pointer (an associative recall: match a value among the options, read
the token two places before it), independent of vision. The learnability probes
(:mod:`cvitkit.probe`) found the tiny models collapsing to one letter on every option-letter task;
this probe asks whether the language model can learn the pointer at all, with the picture replaced by
a sentence that states the value::

    USER: It is circle. Which one is it?
    A. square
    B. circle
    C. star
    Answer with the option's letter from the given choices directly. ASSISTANT: B

Two tasks are trained side by side on the same prompts:

``letter``
    the answer is the letter of the matching option (the pointer).
``copy``
    the control: the answer is the stated value itself (one look-up, no pointer). It shows that the
    loop, the model and the learning rate can learn *something* from these prompts in the same steps.

Two more strip the words away, to tell the pointer itself from its wording. Each prompt is bare
tokens: the queried value, a newline, then each option as its letter token and its value token, then
``:`` (``circle \\n A heart B circle C star :``):

``recall``
    the answer is the matching option's letter token as it stands in the prompt (``B``), so the model
    can copy it: associative recall.
``recall_remap``
    the same prompts answered with the letter as the ``letter`` task writes it (``" B"``), a token
    that is not in the prompt. In the kit's byte-level BPE ``B`` and ``" B"`` are different tokens,
    and a tiny model trained from scratch has never learned that they are the same letter.

One more moves the value to where an induction step can use it, as a model that names what it sees
before its letter would (``circle B``):

``value_letter``
    the prompt does not state the value (the picture would); the reply starts with it, and the scored
    token is the letter that follows, given the value (teacher forced: ``... ASSISTANT: circle`` →
    ``" B"``). The value is then the current token and the option equal to it the only earlier copy, so
    the pointer is one look-back from a match, the classic induction step. The option-letter scorer
    reads ``circle B`` as ``B``.

One more asks whether the bare pointer, once formed, carries over to the words:

``letter_curriculum``
    a curriculum: ``recall`` alone for ``--warm-steps`` steps first, then every step trains on half a
    batch of ``recall`` and half a batch of ``letter`` prompts (the sum of the two losses), scored on
    the ``letter`` prompts. Trained on ``letter`` alone, or on the mix from the start, the models stay
    at the prior; after the bare pointer has formed, the mix can lift the worded letter task well above
    it (a fresh 2-layer model reached 57 %), though not in every run (``results/mini/tables/option_pointer.md``).

Each model trains every weight of its language model (full fine-tuning, AdamW, constant learning rate
after a short warm-up) and is scored on 256 held-out prompts by greedy next-token accuracy every 250
steps; it stops early at 99 % (``--stop-at``), so the table's ``steps`` is what each model needed or
the budget it failed in.
Whether the pointer forms is partly luck: the loss sits at the prior and then may fall, and another
seed can land on the other side of that change. ``--seeds`` repeats every model and task with other
seeds (the fresh models' initialisation and every model's order of training prompts;
the held-out prompts stay the same), one row each.
Chance for the letter tasks is the mean of 1/n over 3- and 4-option questions (0.29); the *best constant*
is the share of the most frequent answer among the held-out prompts, what a model collapsed onto one
answer scores.

    python -m cvitkit.option_pointer --profile mini --steps 3000 --layers 4
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from cvitkit.provenance import append_call, provenance

LETTERS = "ABCD"
#: Values the options are drawn from: the shapes, colours and counts of the synthetic MCQ family.
VALUE_POOLS = (
    ("circle", "square", "triangle", "star", "heart", "cross", "ring", "diamond"),
    ("red", "green", "blue", "yellow", "purple", "orange", "black", "white"),
    ("1", "2", "3", "4", "5", "6"),
)
TASKS = ("letter", "copy", "recall", "recall_remap", "value_letter", "letter_curriculum")
#: Tasks whose answer is an option's letter (chance: a uniform guess among 3 or 4 options).
LETTER_TASKS = ("letter", "recall", "recall_remap", "value_letter", "letter_curriculum")
#: The two tasks each step of ``letter_curriculum`` trains on (after its ``recall`` warm-up).
CURRICULUM_MIX = ("recall", "letter")
SUFFIX = "Answer with the option's letter from the given choices directly."


def _draw(rng: random.Random) -> tuple[list[str], str]:
    """3 or 4 distinct options of one kind, and the value asked for (one of them)."""
    pool = rng.choice(VALUE_POOLS)
    options = rng.sample(pool, rng.randint(3, 4))
    return options, rng.choice(options)


def pointer_prompt(rng: random.Random, stated: bool = True) -> tuple[str, str, str]:
    """One question: ``(prompt, letter, value)`` where ``letter`` names the option equal to ``value``.
    With ``stated=False`` the prompt does not say the value (``USER: Which one is it? ...``)."""
    options, value = _draw(rng)
    block = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
    statement = f"It is {value}. " if stated else ""
    prompt = f"USER: {statement}Which one is it?\n{block}\n{SUFFIX} ASSISTANT:"
    return prompt, LETTERS[options.index(value)], value


def letter_chance() -> float:
    """Expected accuracy of a uniform guess: 3 and 4 options are equally likely."""
    return (1 / 3 + 1 / 4) / 2


#: Seed of the held-out prompts, the same for every training seed so that seeds are compared on one set.
TEST_SEED = 10_000


def best_constant(tokenizer, task: str, n_test: int = 256) -> float:
    """Accuracy of the best single answer on the held-out prompts of :func:`train_pointer`: what a model
    that collapsed onto one letter (or one value) scores at most."""
    from collections import Counter

    targets = encode(tokenizer, random.Random(TEST_SEED), n_test, task)[2].tolist()
    return Counter(targets).most_common(1)[0][1] / len(targets)


def encode(tokenizer, rng: random.Random, n: int, task: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` left-padded prompts and the last token of each answer (``" B"``, ``" circle"``, the ``"3"``
    of ``" 3"``)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    prompts, targets = [], []
    for _ in range(n):
        if task in ("recall", "recall_remap"):
            prompt, target = _bare_pointer(tokenizer, rng, remap=task == "recall_remap")
            prompts.append(prompt)
            targets.append(target)
            continue
        prompt, letter, value = pointer_prompt(rng, stated=task != "value_letter")
        if task == "value_letter":
            prompt += " " + value  # the reply so far: the value, then the scored letter
        prompts.append(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        answer = value if task == "copy" else letter
        targets.append(_last_token(tokenizer, " " + answer))
    width = max(map(len, prompts))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask, torch.tensor(targets)


def _last_token(tokenizer, text: str) -> int:
    # the last token: BPE may split " 3" into " " + "3", and only the last piece tells values apart
    return tokenizer(text, add_special_tokens=False)["input_ids"][-1]


def _bare_pointer(tokenizer, rng: random.Random, remap: bool) -> tuple[list[int], int]:
    """Token ids of ``value \\n A v1 B v2 ... :`` and the answer: the matching option's letter token as
    in the prompt, or with ``remap`` the letter task's answer token (``" B"``)."""
    options, value = _draw(rng)
    ids = [_last_token(tokenizer, " " + value), _last_token(tokenizer, "\n")]
    for letter, option in zip(LETTERS, options):
        ids += [_last_token(tokenizer, letter), _last_token(tokenizer, " " + option)]
    ids.append(_last_token(tokenizer, ":"))
    letter = LETTERS[options.index(value)]
    return ids, _last_token(tokenizer, (" " if remap else "") + letter)


def _next_token_logits(model, ids, mask):
    hidden = model.model.language_model(input_ids=ids, attention_mask=mask).last_hidden_state[:, -1]
    return model.lm_head(hidden)


def train_pointer(model, tokenizer, task: str, steps: int, lr: float = 1e-3, batch_size: int = 32, seed: int = 0,
                  eval_every: int = 250, n_test: int = 256, desc: str = "", stop_at: float = 1.0) -> list[dict]:
    """Fine-tune ``model``'s language model (and head) on ``task``; returns the accuracy curve.

    Training stops early once the held-out accuracy reaches ``stop_at`` (the copy control gets there
    in a few hundred steps; the default 1.0 only stops a perfect model). ``letter_curriculum`` trains
    each step on ``batch_size // 2`` prompts of each task of :data:`CURRICULUM_MIX` and is scored on
    ``letter`` prompts; its ``recall`` warm-up is a separate call (:func:`_probe_row`)."""
    from cvitkit.train import clipped_step

    torch.manual_seed(seed)
    rng, test = random.Random(seed), encode(tokenizer, random.Random(TEST_SEED), n_test, task)
    params = [*model.model.language_model.parameters(), *model.lm_head.parameters()]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 30)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))

    def accuracy() -> float:
        model.eval()
        with torch.no_grad():
            pred = _next_token_logits(model, test[0], test[1]).argmax(-1)
        model.train()
        return (pred == test[2]).float().mean().item()

    curve, window, t0 = [{"step": 0, "loss": float("nan"), "accuracy": accuracy(), "seconds": 0.0}], [], time.time()
    model.train()
    for step in tqdm(range(1, steps + 1), desc=desc or f"option pointer ({task})", disable=None):
        parts = CURRICULUM_MIX if task == "letter_curriculum" else (task,)
        loss = 0
        for part in parts:
            ids, mask, target = encode(tokenizer, rng, batch_size // len(parts), part)
            loss = loss + F.cross_entropy(_next_token_logits(model, ids, mask), target)
        clipped_step(loss, params, optimizer, scheduler)
        window.append(loss.item())
        if step % eval_every == 0 or step == steps:
            curve.append({"step": step, "loss": sum(window) / len(window), "accuracy": accuracy(),
                          "seconds": round(time.time() - t0, 1)})
            window = []
            if curve[-1]["accuracy"] >= stop_at:
                break
    return curve


def _models(profile, layers: list[int], seed: int = 0, base: bool = True):
    """``(label, build)`` pairs, ``build()`` returning a fresh ``(model, tokenizer)``: the profile's
    pretrained base model (unless ``base`` is False), then randomly initialised models with each
    language-model depth (initialised with the base model's seed plus ``seed``)."""
    from transformers import AutoTokenizer, LlavaForConditionalGeneration

    from cvitkit.base_model import ensure_base_model
    from cvitkit.data import corpus
    from cvitkit.models import build_tiny_llava

    if base:
        folder = ensure_base_model(profile)

        def pretrained():
            return LlavaForConditionalGeneration.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)

        yield f"{profile.model.preset} base ({profile.name})", pretrained
    for n in layers:
        def fresh(n=n):
            model, processor = build_tiny_llava(profile.model.preset, corpus=corpus(), seed=profile.base.seed + seed,
                                                text_layers=n, image_size=profile.data.image_size)
            return model, processor.tokenizer
        yield f"{profile.model.preset}, {n} LM layers, random init", fresh


def write_table(folder, rows: list[dict], arguments: dict, curves: dict) -> pd.DataFrame:
    """Merge ``rows`` into ``<folder>/option_pointer.{csv,md}`` (a row replaces the saved one of the same
    model, task and seed; the others stay) and append the call's arguments and curves to
    ``option_pointer.json``."""
    from cvitkit.probe import merge_table

    # rows written before seeds were a choice all used seed 0
    table = merge_table(Path(folder) / "option_pointer.csv", pd.DataFrame(rows), ["model", "task", "seed"],
                        lambda t: t.sort_values(["model", "task", "seed"], ascending=[True, False, True],
                                                ignore_index=True), defaults={"seed": 0})
    sidecar = Path(folder) / "option_pointer.json"
    append_call(sidecar, {"arguments": arguments, "curves": curves, "provenance": provenance(seed=0)})
    return table


def main(argv=None) -> int:
    from cvitkit.profiles import available_profiles, load_profile

    parser = argparse.ArgumentParser(prog="python -m cvitkit.option_pointer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="mini", choices=available_profiles())
    parser.add_argument("--steps", type=int, default=3000, help="optimizer steps per model and task")
    parser.add_argument("--layers", type=int, nargs="*", default=[2, 4],
                        help="depths of freshly initialised language models to try besides the base model")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="training seeds (the fresh models' initialisation and the order of training "
                             "prompts); one row per model, task and seed")
    parser.add_argument("--warm-steps", type=int, default=4000,
                        help="letter_curriculum: steps of bare recall before the recall + letter mix")
    parser.add_argument("--no-base", action="store_true", help="leave out the profile's base model")
    parser.add_argument("--stop-at", type=float, default=0.99,
                        help="stop a model early once its held-out accuracy reaches this (1.0: never early)")
    args = parser.parse_args(argv)
    profile = load_profile(args.profile)
    rows, curves = [], {}
    for seed in args.seeds:
        for label, build in _models(profile, args.layers, seed, base=not args.no_base):
            for task in args.tasks:
                row, curve = _probe_row(label, build, task, seed, args)
                curves[f"{label} / {task}" + (f" / seed {seed}" if seed else "")] = curve
                rows.append(row)
                print(row, flush=True)
    table = write_table(profile.results_dir / "tables", rows, vars(args), curves)
    print(table.to_markdown(index=False))
    return 0


def _probe_row(label: str, build, task: str, seed: int, args) -> tuple[dict, list[dict]]:
    """Train one model on one task with one seed; its table row and its accuracy curve
    (``letter_curriculum``: bare recall for ``args.warm_steps`` first, its curve kept under ``warm_up``)."""
    model, tokenizer = build()
    warm = []
    if task == "letter_curriculum":
        warm = train_pointer(model, tokenizer, "recall", args.warm_steps, lr=args.lr, seed=seed,
                             desc=f"{label}: recall warm-up, seed {seed}", stop_at=args.stop_at)
    curve = train_pointer(model, tokenizer, task, args.steps, lr=args.lr, seed=seed,
                          desc=f"{label}: {task}, seed {seed}", stop_at=args.stop_at)
    if warm:
        curve[0]["warm_up"] = warm
    return {"model": label, "task": task, "seed": seed, "recall steps first": warm[-1]["step"] if warm else None,
            "steps": curve[-1]["step"],
            "chance": round(100 * letter_chance(), 1) if task in LETTER_TASKS else None,
            "best constant": round(100 * best_constant(tokenizer, task), 1),
            "accuracy at start": round(100 * curve[0]["accuracy"], 1),
            "best accuracy": round(100 * max(c["accuracy"] for c in curve), 1),
            "final accuracy": round(100 * curve[-1]["accuracy"], 1),
            "train seconds": round(curve[-1]["seconds"] + (warm[-1]["seconds"] if warm else 0), 1)}, curve


if __name__ == "__main__":
    raise SystemExit(main())

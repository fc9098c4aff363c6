"""Which kinds the base model names in its own captions of fresh pictures, domain by domain.

:mod:`cvitkit.object_readout` asks what the frozen vision tower keeps of an object's kind; this asks
the whole base model, tower, projector and language model together, the question its pretraining
taught it: *describe the picture*. For each captioning task of the vision suite (one per domain) it
draws ``pictures`` test pictures the model has never seen (from the test split's seeds), lets the
model caption them greedily, and compares the kind words of each caption with the kinds drawn:

.. math::

    \\text{named right} = \\frac{\\sum_p |N_p \\cap K_p|}{\\sum_p |N_p|}, \\qquad
    \\text{found} = \\frac{\\sum_p |N_p \\cap K_p|}{\\sum_p |K_p|}, \\qquad
    \\text{chance} = \\frac{1}{P}\\sum_p \\frac{|K_p|}{|D|}

with :math:`N_p` the domain's kinds the caption of picture :math:`p` names (singular or plural),
:math:`K_p` the kinds drawn in it, and :math:`D` the domain's kinds: *chance* is the share of right
names a caption would get by naming a kind of the domain at random. *Named right* near chance means
the model writes kinds without reading them; a model that reads them names them right far above it.
The colour words are checked the same way (*colour named right*, *colour chance*).

A base model whose LLaVA stage captioned these domains (``--caption-every-domain``) was trained to do
exactly this; the profile's own base model never captioned a benchmark domain, so only its toy row
measures what it was trained for. ::

    python -m cvitkit.caption_readout --profile mini --caption-every-domain
    python -m cvitkit.caption_readout --profile mini --caption-every-domain --vision-object-weight 1 --vision-epochs 20

Rows go to ``results/<profile>/tables/caption_readout.{csv,md}`` (a row replaces the saved one of the
same domain, model and picture count); each call, with the base model it read, is appended to
``caption_readout.json``.
"""

from __future__ import annotations

import argparse
import re

import pandas as pd
import torch

from cvitkit.errors import ConfigError

COLUMNS = ["domain", "model", "pictures", "kinds", "named right", "found", "chance", "colour named right",
           "colour chance", "example caption", "drawn caption"]

#: Test indices of the read-out's pictures start here, far past the vision suite's test samples (one per task).
FIRST_INDEX = 10_000


def words_named(text: str, words, plurals: dict[str, str]) -> set[str]:
    """The words of ``words`` that ``text`` names, in the singular or in the plural ``plurals`` gives."""
    return {w for w in words if re.search(rf"\b({re.escape(w)}|{re.escape(plurals.get(w, w))})\b", text)}


def overlap_scores(named: list[set[str]], drawn: list[set[str]], vocabulary: int) -> tuple[float, float, float]:
    """``(named right, found, chance)`` in percent of the formula above, over pictures."""
    right = sum(len(n & d) for n, d in zip(named, drawn))
    said, there = sum(len(n) for n in named), sum(len(d) for d in drawn)
    chance = sum(len(d) / vocabulary for d in drawn) / max(1, len(drawn))
    return (100 * right / said if said else 0.0, 100 * right / there if there else 0.0, 100 * chance)


@torch.no_grad()
def caption(model, processor, samples, batch_size: int = 32, max_new_tokens: int = 32) -> list[str]:
    """Greedy captions of ``samples`` (synthetic samples with a picture and a caption request)."""
    from cvitkit.data import EvalCollator

    collate, tokenizer = EvalCollator(processor), processor.tokenizer
    out = []
    for start in range(0, len(samples), batch_size):
        items = [{"question_id": i, "pil_image": s.image, "image": "drawn", "text": s.question, "answer": s.answer}
                 for i, s in enumerate(samples[start:start + batch_size])]
        batch = collate(items)
        new = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             pixel_values=batch["pixel_values"], max_new_tokens=max_new_tokens, do_sample=False,
                             num_beams=1, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        out += [t.strip() for t in tokenizer.batch_decode(new[:, batch["input_ids"].shape[1]:],
                                                          skip_special_tokens=True)]
    return out


def readout_domain(model, processor, suite_name: str, spec, pictures: int, seed: int, image_size: int) -> dict:
    """One row: the kinds and colours named in the model's captions of ``pictures`` fresh pictures of the
    captioning task ``spec`` (the formulas above)."""
    from cvitkit.data.build import draw_sample
    from cvitkit.data.synthetic.domains import DOMAINS

    domain = DOMAINS[spec.domain]
    samples = [draw_sample(suite_name, spec, "test", FIRST_INDEX + i, seed, image_size, "default")
               for i in range(pictures)]
    texts = caption(model, processor, samples)
    plurals = {k: domain.plural(k) for k in domain.kinds}
    objects = [s.truth.get("objects", []) for s in samples]
    kinds = overlap_scores([words_named(t, domain.kinds, plurals) for t in texts],
                           [{o["kind"] for o in obj} for obj in objects], len(domain.kinds))
    colours = overlap_scores([words_named(t, domain.colours, {}) for t in texts],
                             [{o["colour"] for o in obj} for obj in objects], len(domain.colours))
    return {"domain": spec.domain, "pictures": pictures, "kinds": len(domain.kinds),
            "named right": round(kinds[0], 1), "found": round(kinds[1], 1), "chance": round(kinds[2], 1),
            "colour named right": round(colours[0], 1), "colour chance": round(colours[2], 1),
            "example caption": texts[0], "drawn caption": samples[0].answer}


def caption_tasks(suite) -> list:
    """The plain captioning task of each domain of the vision suite (``Caption-<domain>``)."""
    tasks = [t for t in suite.tasks if t.name == f"Caption-{t.domain}"]
    if not tasks:
        raise ConfigError(f"suite {suite.name!r} has no captioning task named Caption-<domain>. Fix: use the "
                          "vision suite of the mini profile (vision_pretrain).")
    return tasks


def main(argv=None) -> int:
    from cvitkit.base_model import base_identity
    from cvitkit.data import load_suite
    from cvitkit.object_readout import load_probed_base, write_table
    from cvitkit.probe import add_tower_options, check_pretrains_stage0, model_label
    from cvitkit.profiles import available_profiles, load_profile
    from cvitkit.runner import base_model_dir

    parser = argparse.ArgumentParser(prog="python -m cvitkit.caption_readout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="mini", choices=available_profiles())
    parser.add_argument("--pictures", type=int, default=100, help="fresh test pictures per domain")
    parser.add_argument("--caption-every-domain", action="store_true",
                        help="read the base model whose LLaVA stage also captioned every domain")
    add_tower_options(parser)
    args = parser.parse_args(argv)
    if args.pictures < 1:
        parser.error("--pictures must be at least 1.")
    profile = load_profile(args.profile)
    check_pretrains_stage0(profile, "the caption read-out")
    profile, image_size, model, processor = load_probed_base(profile, args)
    suite = load_suite(profile.base.vision_suite)
    label = model_label(profile, image_size=image_size)
    rows = []
    for spec in caption_tasks(suite):
        rows.append({"model": label, **readout_domain(model, processor, suite.name, spec, args.pictures,
                                                       profile.data.seed, profile.data.image_size)})
        print(pd.DataFrame([rows[-1]]).drop(columns=["example caption", "drawn caption"]).to_string(index=False))
    base = base_model_dir(profile)
    write_table(profile.results_dir / "tables", rows, vars(args), base_identity(base) if base else None,
                name="caption_readout", columns=COLUMNS, key=["domain", "model", "pictures"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

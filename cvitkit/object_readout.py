"""What the frozen vision tower keeps of each object: a linear read-out of its kind and colour.

The learnability probes (:mod:`cvitkit.probe`) left tasks such as DCL AD, Med and CoIN GQA no better
than a model shown a blank picture, even with replies that list the scene first: the listed scenes name
wrong kinds and colours. The adapters train the language model and the projector, never the tower, so
whatever the tower drops about an object no number of steps brings back. This read-out asks how much of
an object's kind and colour the tower's patch features still hold:

- each object of a picture (drawn again from its seed, with its box) is represented by the mean of the
  patch features (at the layer the projector reads) whose patch centre lies inside the object's box,
  or by the patch nearest the box's centre if none does;
- a linear map (least squares onto one-hot labels, ridge :math:`\\lambda`) is fitted on the objects of
  the even-numbered pictures and scored on those of the odd ones;
- *read-out* is the held-out accuracy of the arg-max class, *majority* the held-out accuracy of the
  most frequent fitted class: read-out near majority means the features do not tell the classes apart
  linearly, read-out near 100 that the tower keeps them and the work left is the language model's.

A linear read-out is a lower bound on what a deeper reader could get, but the projector is one layer
and the tiny language model has few; a kind the read-out cannot tell apart is unlikely to be told apart
downstream. ::

    python -m cvitkit.object_readout --profile mini --suite mllmcl_dcl --tasks AD Med
    python -m cvitkit.object_readout --profile mini --suite mllmcl_dcl --tasks AD --vision-position-weight 1
    python -m cvitkit.object_readout --profile mini --suite mllmcl_dcl --tasks AD --vision-object-weight 1
    python -m cvitkit.object_readout --profile mini --suite mllmcl_dcl --tasks AD Med --image-size 128

Rows go to ``results/<profile>/tables/object_readout.{csv,md}`` (a row replaces the saved one of the
same suite, task, model and picture count); each call, with the base model it read (key, weights hash,
held-out scores), is appended to ``object_readout.json``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
import torch

from cvitkit.errors import ConfigError

#: Ridge strength, relative to the mean squared feature norm (keeps the fit stable with few objects).
RIDGE = 1e-3

COLUMNS = ["suite", "task", "model", "pictures", "objects", "kinds", "kind read-out", "kind majority",
           "colours", "colour read-out", "colour majority"]


def object_features(model, processor, samples) -> list[tuple[torch.Tensor, str, str, int]]:
    """``(feature, kind, colour, picture)`` per drawn object of ``samples`` (synthetic samples whose
    ``truth["objects"]`` carry pixel boxes): the mean patch feature inside the object's box. A GUI
    button's *kind* is its label, the word a question names it by."""
    from cvitkit.vision_pretrain import patch_centres, patch_features, patches_in_box

    out = []
    for start in range(0, len(samples), 32):
        batch = samples[start:start + 32]
        pixels = processor.image_processor(images=[s.image for s in batch], return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            feats = patch_features(model, pixels).double()
        side = math.isqrt(feats.shape[1])
        centres = patch_centres(side)
        for i, s in enumerate(batch):
            size = s.image.size[0]
            for obj in s.truth.get("objects", []):
                x1, y1, x2, y2 = (v / size for v in obj["box"])
                mask = patches_in_box((x1, y1, x2, y2), centres).reshape(-1)
                if not mask.any():
                    row = int(torch.argmin((centres - (y1 + y2) / 2).abs()))
                    col = int(torch.argmin((centres - (x1 + x2) / 2).abs()))
                    mask[row * side + col] = True
                # what a question names the object by: a button's label, anything else its kind
                out.append((feats[i][mask].mean(0), obj.get("label", obj["kind"]), obj["colour"], start + i))
    return out


def linear_readout(features: torch.Tensor, labels: list[str], fit: torch.Tensor) -> tuple[float, float]:
    """Held-out accuracy (percent) of a least-squares linear read-out of ``labels`` from ``features``,
    fitted on the rows where ``fit`` is true and scored on the others, and of the fitted majority label."""
    classes = sorted(set(labels))
    y = torch.tensor([classes.index(label) for label in labels])
    x = torch.cat([features, torch.ones(len(features), 1, dtype=features.dtype)], 1)
    held = ~fit
    if not fit.any() or not held.any():
        raise ValueError("the read-out needs objects on both sides: pictures to fit on and pictures to score.")
    one_hot = torch.nn.functional.one_hot(y, len(classes)).to(x.dtype)
    gram = x[fit].T @ x[fit]
    ridge = RIDGE * gram.diagonal().mean() * torch.eye(len(gram), dtype=x.dtype)
    weights = torch.linalg.solve(gram + ridge, x[fit].T @ one_hot[fit])
    predicted = (x[held] @ weights).argmax(1)
    majority = int(torch.bincount(y[fit], minlength=len(classes)).argmax())
    return (100 * float((predicted == y[held]).double().mean()),
            100 * float((y[held] == majority).double().mean()))


def readout_row(model, processor, samples) -> dict:
    """Kind and colour read-outs of the objects of ``samples`` (even pictures fit, odd ones score)."""
    objects = object_features(model, processor, samples)
    if not objects:
        raise ConfigError("the pictures show no drawn objects with kinds and boxes. Fix: read out a task of an "
                          "object family (vqa, relation, ground, math with mode objects, ...).")
    features = torch.stack([f for f, *_ in objects])
    fit = torch.tensor([picture % 2 == 0 for *_, picture in objects])
    row = {"pictures": len(samples), "objects": len(objects)}
    for name, index in (("kind", 1), ("colour", 2)):
        labels = [o[index] for o in objects]
        row[f"{name}s"] = len(set(labels))
        row[f"{name} read-out"], row[f"{name} majority"] = (round(v, 1) for v in linear_readout(features, labels, fit))
    return row


def draw_pictures(profile, suite, task_name: str, pictures: int) -> list:
    """The first ``pictures`` training samples of a suite's task, drawn again from their seeds."""
    from cvitkit.data.build import draw_sample

    spec = {t.name: t for t in suite.tasks}.get(task_name)
    if spec is None:
        raise ConfigError(f"suite {suite.name!r} has no task {task_name!r}; its tasks are "
                          f"{[t.name for t in suite.tasks]}.")
    data = profile.data
    return [draw_sample(suite.name, spec, "train", i, data.seed, data.image_size, data.instructions)
            for i in range(pictures)]


def write_table(folder, rows: list[dict], arguments: dict, base_model: dict | None, name: str = "object_readout",
                columns: list[str] = COLUMNS, key: tuple[str, ...] = ("suite", "task", "model", "pictures")) -> pd.DataFrame:
    """Merge ``rows`` into ``<folder>/<name>.{csv,md}`` (a saved row with the same ``key`` is replaced; sorted
    by the key's columns but the last) and append the call (its arguments, the base model's identity and
    provenance) to ``<name>.json``. :mod:`cvitkit.caption_readout` writes its table with it too."""
    from cvitkit.probe import merge_table
    from cvitkit.provenance import append_call, provenance

    table = merge_table(Path(folder) / f"{name}.csv", pd.DataFrame(rows, columns=columns), list(key),
                        lambda t: t.sort_values(list(key[:-1]), ignore_index=True))
    append_call(Path(folder) / f"{name}.json",
                {"arguments": arguments, "base_model": base_model, "provenance": provenance(seed=0)})
    return table


def load_probed_base(profile, args):
    """``(profile, image side or None, model, processor)``: the base model the command line's tower options
    (:func:`~cvitkit.probe.add_tower_options`) name, loaded for reading (eval mode)."""
    from cvitkit.data import corpus
    from cvitkit.probe import own_image_size, with_tower_options
    from cvitkit.runner import load_base

    profile, image_size = own_image_size(with_tower_options(profile, args), args.image_size)
    model, processor = load_base(profile, corpus=corpus())
    return profile, image_size, model.eval(), processor


def main(argv=None) -> int:
    from cvitkit.base_model import base_identity
    from cvitkit.data import load_suite
    from cvitkit.probe import add_tower_options, model_label
    from cvitkit.profiles import available_profiles, load_profile
    from cvitkit.runner import base_model_dir

    parser = argparse.ArgumentParser(prog="python -m cvitkit.object_readout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="mini", choices=available_profiles())
    parser.add_argument("--suite", required=True, help="a suite whose tasks draw objects (coin, mllmcl_dcl, ...)")
    parser.add_argument("--tasks", nargs="+", required=True, help="tasks of the suite to read out")
    parser.add_argument("--pictures", type=int, default=400,
                        help="training pictures per task (half fit the read-out, half score it)")
    add_tower_options(parser)
    args = parser.parse_args(argv)
    if args.pictures < 2:
        parser.error("--pictures must be at least 2: half fit the read-out, half score it.")
    profile = load_profile(args.profile)
    if profile.data_root:
        raise ConfigError("the read-out draws each picture again from its seed to know its objects; it needs the "
                          "kit's synthetic data, not a data root.")
    profile, image_size, model, processor = load_probed_base(profile, args)
    suite = load_suite(args.suite)
    rows = []
    for task in args.tasks:
        samples = draw_pictures(profile, suite, task, args.pictures)
        rows.append({"suite": suite.name, "task": task, "model": model_label(profile, image_size=image_size),
                     **readout_row(model, processor, samples)})
        print(pd.DataFrame([rows[-1]]).to_string(index=False))
    base = base_model_dir(profile)
    write_table(profile.results_dir / "tables", rows, vars(args), base_identity(base) if base else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

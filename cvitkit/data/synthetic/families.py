"""Families over object scenes: classify, scene, vqa, relation, unanswerable, ground, caption.

Each family draws objects through a :class:`~cvitkit.data.synthetic.domains.Domain` and computes the
answer from what was drawn (the returned ``truth`` lists every object with its box), so answers are
correct by construction and a test can re-check them against the pixels.
"""

from __future__ import annotations

import random

from PIL import ImageDraw

from cvitkit.data.synthetic.base import Sample, article, choose_types, family, int_range, norm_box, pick
from cvitkit.data.synthetic.domains import Domain
from cvitkit.data.synthetic.places import PLACE_PHRASE, PLACES
from cvitkit.data.synthetic.render import Obj, canvas, covered_lens, degrade, text_centred
from cvitkit.data.synthetic.templates import CAPTIONS, CAPTIONS_BLURRY, CAPTIONS_TEXT, SETTING_PHRASE, WORDS


def _truth(objs, **extra) -> dict:
    return {"objects": [o.as_dict() for o in objs], **extra}


def _distinct_kinds(rng: random.Random, d: Domain, n: int) -> list[tuple[str, str]]:
    """``n`` objects of distinct kinds (random colours): 'the <kind>' names one object."""
    return [(k, rng.choice(list(d.colours))) for k in rng.sample(d.kinds, min(n, len(d.kinds)))]


@family("classify", "name the single large object (ImageNet-like)")
def classify(rng, d: Domain, size: int, opts: dict) -> Sample:
    kind, colour = rng.choice(d.kinds), rng.choice(list(d.colours))
    img, draw = canvas(size)
    d.background(img, draw, rng, {"size": size})
    side = int(size * rng.uniform(0.5, 0.72))
    x0, y0 = rng.randint(0, size - side), rng.randint(int(size * 0.05), size - side)
    obj = Obj(kind, colour, (x0, y0, x0 + side, y0 + side))
    d.draw_object(draw, obj, size, rng)
    return Sample(img, pick(rng, "classify"), kind, truth=_truth([obj], label=kind))


@family("scene", "name the place shown (Places365-like)", places=list(PLACES), max_objects=2)
def scene(rng, d: Domain, size: int, opts: dict) -> Sample:
    place = rng.choice(opts["places"])
    specs = _distinct_kinds(rng, d, rng.randint(0, min(opts["max_objects"], d.max_objects)))
    img, objs, info = d.scene(rng, size, specs, place=place)
    return Sample(img, pick(rng, "scene"), info["setting"], truth=_truth(objs, label=info["setting"]))


@family("vqa", "colour / object / count / presence questions about drawn objects",
        questions=["colour", "kind", "count", "presence"], n_objects=[1, 4], count_max=6)
def vqa(rng, d: Domain, size: int, opts: dict) -> Sample:
    qtype = choose_types(rng, opts["questions"], ("colour", "kind", "count", "presence"))
    colours = list(d.colours)
    if qtype == "count":
        kind = rng.choice(d.kinds)
        count = int_range(rng, [1, opts["count_max"]], cap=d.max_objects)
        others = [k for k in d.kinds if k != kind]
        extra = rng.randint(0, min(2, d.max_objects - count))
        specs = [(kind, rng.choice(colours)) for _ in range(count)]
        specs += [(rng.choice(others), rng.choice(colours)) for _ in range(extra)]
        rng.shuffle(specs)
        img, objs, _ = d.scene(rng, size, specs)
        truth_count = sum(o.kind == kind for o in objs)
        return Sample(img, pick(rng, "vqa.count", kinds=d.plural(kind)), str(truth_count),
                      truth=_truth(objs, question=qtype, target_kind=kind, count=truth_count))
    n = int_range(rng, opts["n_objects"], cap=min(d.max_objects, len(d.kinds)))
    if qtype == "colour":
        specs = _distinct_kinds(rng, d, n)
        img, objs, _ = d.scene(rng, size, specs)
        target = rng.choice(objs)
        return Sample(img, pick(rng, "vqa.colour", kind=target.kind), target.colour,
                      truth=_truth(objs, question=qtype, target=target.as_dict()))
    if qtype == "kind":
        n = min(n, len(colours))
        specs = list(zip(rng.sample(d.kinds, n), rng.sample(colours, n)))
        img, objs, _ = d.scene(rng, size, specs)
        target = rng.choice(objs)
        return Sample(img, pick(rng, "vqa.kind", colour=target.colour), target.kind,
                      truth=_truth(objs, question=qtype, target=target.as_dict()))
    specs = [(rng.choice(d.kinds), rng.choice(colours)) for _ in range(n)]
    img, objs, _ = d.scene(rng, size, specs)
    present = {(o.kind, o.colour) for o in objs}
    absent = [(k, c) for k in d.kinds for c in colours if (k, c) not in present]
    if rng.random() < 0.5 or not absent:
        kind, colour = rng.choice(sorted(present))
    else:
        kind, colour = rng.choice(absent)
    answer = "yes" if (kind, colour) in present else "no"
    return Sample(img, pick(rng, "vqa.presence", obj=article(f"{colour} {kind}")), answer,
                  truth=_truth(objs, question=qtype, query=[kind, colour], present=answer == "yes"))


def _relation(a, b, axis: str) -> str:
    (ax, ay), (bx, by) = a.centre, b.centre
    return ("left" if ax < bx else "right") if axis == "x" else ("above" if ay < by else "below")


@family("relation", "spatial and compositional questions about object pairs (GQA-like)",
        questions=["side", "vertical", "yesno", "which", "colour_of"], n_objects=[2, 3])
def relation(rng, d: Domain, size: int, opts: dict) -> Sample:
    qtype = choose_types(rng, opts["questions"], ("side", "vertical", "yesno", "which", "colour_of"))
    rows, cols = d.grid
    axis = "y" if qtype == "vertical" and rows > 1 else "x"
    cap = min(d.max_objects, len(d.kinds))
    n = 2 if qtype in ("which", "colour_of") else int_range(rng, opts["n_objects"], cap=cap)
    for _ in range(50):  # resample until the asked pair is separated on the asked axis
        img, objs, _ = d.scene(rng, size, _distinct_kinds(rng, d, n))
        a, b = rng.sample(objs, 2)
        i = 0 if axis == "x" else 1
        gap = abs(a.centre[i] - b.centre[i])
        if gap >= (size / (cols if axis == "x" else rows)) * 0.5:
            break
    rel, asked = _relation(a, b, axis), {}
    if qtype in ("side", "vertical"):
        q, ans = pick(rng, f"relation.{qtype}", a=a.kind, b=b.kind), rel
    elif qtype == "yesno":
        asked = {"asked": rng.choice(["left", "right"])}
        q, ans = pick(rng, "relation.yesno", a=a.kind, b=b.kind, rel=asked["asked"]), "yes" if asked["asked"] == rel else "no"
    elif qtype == "which":
        q, ans = pick(rng, "relation.which", b=b.kind, rel=rel), a.kind
    else:
        q, ans = pick(rng, "relation.colour_of", b=b.kind, rel=rel), a.colour
    return Sample(img, q, ans, truth=_truth(objs, question=qtype, a=a.as_dict(), b=b.as_dict(), relation=rel, **asked))


@family("unanswerable", "questions that are sometimes unanswerable (VizWiz-like)",
        p_unanswerable=0.35, questions=["colour", "kind"])
def unanswerable(rng, d: Domain, size: int, opts: dict) -> Sample:
    qtype = choose_types(rng, opts["questions"], ("colour", "kind"))
    n = rng.randint(1, 2)
    specs = list(zip(rng.sample(d.kinds, n), rng.sample(list(d.colours), n)))
    img, objs, _ = d.scene(rng, size, specs, scale=(0.75, 0.95))
    target = objs[0]
    mode = "answerable"
    if rng.random() < opts["p_unanswerable"]:
        mode = rng.choice(["covered", "absent"])
    if mode == "absent":  # ask about something that is not in the picture
        if qtype == "colour":
            kind = rng.choice([k for k in d.kinds if k not in {o.kind for o in objs}])
            q = pick(rng, "vqa.colour", kind=kind)
        else:
            colour = rng.choice([c for c in d.colours if c not in {o.colour for o in objs}])
            q = pick(rng, "vqa.kind", colour=colour)
        answer = "unanswerable"
    else:
        if qtype == "colour":
            q = pick(rng, "vqa.colour", kind=target.kind)
        else:
            q = pick(rng, "vqa.kind", colour=target.colour)
        answer = target.colour if qtype == "colour" else target.kind
        if mode == "covered":
            img, answer = covered_lens(size, rng), "unanswerable"
    if mode != "covered":
        img = degrade(img, rng, strength=0.6)
    return Sample(img, q, answer, truth=_truth(objs if mode != "covered" else [], mode=mode, target=target.as_dict()))


@family("ground", "bounding box of a referring expression (RefCOCO-like)", n_objects=[2, 4])
def ground(rng, d: Domain, size: int, opts: dict) -> Sample:
    n = int_range(rng, opts["n_objects"], cap=d.max_objects)
    colours = list(d.colours)
    while True:  # resample until the target's colour+kind is unique in the picture
        specs = [(rng.choice(d.kinds), rng.choice(colours)) for _ in range(n)]
        if specs.count(specs[0]) == 1:
            break
    img, objs, _ = d.scene(rng, size, specs, scale=(0.6, 0.95))
    target = objs[0]
    # 'the car' when it is the only car, else 'the red car'
    if sum(o.kind == target.kind for o in objs) == 1 and rng.random() < 0.5:
        expr = f"the {target.kind}"
    else:
        expr = f"the {target.colour} {target.kind}"
    answer = norm_box(target.box, size)
    return Sample(img, pick(rng, "ground", expr=expr), answer, truth=_truth(objs, target=target.as_dict(), expr=expr))


def _np(o) -> str:
    return article(f"{o.colour} {o.kind}")


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


@family("caption", "short description with several reference captions", n_objects=[1, 3], with_text=False,
        degrade=False, n_references=5)
def caption(rng, d: Domain, size: int, opts: dict) -> Sample:
    n = int_range(rng, opts["n_objects"], cap=min(d.max_objects, len(d.kinds)) - (1 if opts["with_text"] else 0))
    # with a sign on top, objects go to the lower part of the picture
    layout = {"region": (0.04, 0.42, 0.96, 0.96), "grid": (2, 3)} if opts["with_text"] else {}
    img, objs, info = d.scene(rng, size, _distinct_kinds(rng, d, max(n, 1)), **layout)
    where = PLACE_PHRASE.get(info["setting"]) or SETTING_PHRASE.get(info["setting"], "")
    ordered = sorted(objs, key=lambda o: (o.centre[0], o.centre[1]))
    objs_txt, rev_txt = _join([_np(o) for o in ordered]), _join([_np(o) for o in reversed(ordered)])
    truth = _truth(objs, setting=info["setting"])
    if opts["with_text"]:  # TextCaps: the caption must mention the word on the sign
        word = rng.choice(WORDS)
        draw = ImageDraw.Draw(img)
        draw.fontmode = "1"
        box = (int(size * 0.1), int(size * 0.04), int(size * 0.9), int(size * 0.34))
        draw.rectangle(box, fill=(250, 250, 250), outline=(0, 0, 0))
        text_centred(draw, word, (box[0] + 2, box[1] + 2, box[2] - 2, box[3] - 2), (0, 0, 0))
        patterns = [p.format(word=word.lower(), where=f"next to {objs_txt}") for p in CAPTIONS_TEXT]
        truth["word"] = word.lower()
    elif opts["degrade"]:
        img = degrade(img, rng, strength=1.0)
        patterns = [p.format(objs=objs_txt) for p in CAPTIONS_BLURRY]
    else:
        patterns = [p.format(objs=objs_txt, objs_rev=rev_txt, where=where).strip() for p in CAPTIONS]
    refs = list(dict.fromkeys(patterns))[: opts["n_references"]]
    return Sample(img, pick(rng, "caption"), rng.choice(refs), references=refs, truth=truth)


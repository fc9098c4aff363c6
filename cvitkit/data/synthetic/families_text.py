"""Families with rendered text, charts or screens: mcq, ocr, math, chart, gui.

Text uses Pillow's bundled font (upper case for legibility at 64 px); answers are lower case and
the benchmarks' scorers compare case-insensitively.
"""

from __future__ import annotations

import random

from cvitkit.data.synthetic.base import (
    Sample,
    choose_types,
    family,
    int_range,
    norm_box,
    norm_point,
    options_block,
    pick,
)
from cvitkit.data.synthetic.domains import DOMAINS, Domain
from cvitkit.data.synthetic.families import _truth
from cvitkit.data.synthetic.objects import shade
from cvitkit.data.synthetic.render import BLACK, WHITE, Obj, canvas, fit_font, line_width, text_centred
from cvitkit.data.synthetic.templates import ELEMENTS, GENRES, GUI_LABELS, WORDS

_NOUN = {"diagram": "shape", "chart": "shape", "document": "shape", "gui": "icon", "toy": "shape", "medical": "finding"}
_PICTURE = {"diagram": "diagram", "chart": "figure", "medical": "image"}


@family("mcq", "science-style multiple choice, answered with the option letter",
        topics=["shape", "colour", "count", "larger"], n_options=[3, 4])
def mcq(rng, d: Domain, size: int, opts: dict) -> Sample:
    topic = choose_types(rng, opts["topics"], ("shape", "colour", "count", "larger", "molecule", "lines"))
    n_opt = int_range(rng, opts["n_options"])
    noun, picture = _NOUN.get(d.name, "object"), _PICTURE.get(d.name, "picture")
    colours = list(d.colours)
    if topic == "shape":
        img, objs, _ = d.scene(rng, size, [(rng.choice(d.kinds), rng.choice(colours))], scale=(0.8, 0.95))
        stem, correct, pool = pick(rng, "mcq.shape", noun=noun, picture=picture), objs[0].kind, list(d.kinds)
    elif topic == "colour":
        specs = list(zip(rng.sample(d.kinds, 2), rng.sample(colours, 2)))
        img, objs, _ = d.scene(rng, size, specs)
        stem = pick(rng, "mcq.colour", kind=objs[0].kind, picture=picture)
        correct, pool = objs[0].colour, colours
    elif topic == "count":
        kind = rng.choice(d.kinds)
        count = rng.randint(1, min(5, d.max_objects - 1))
        specs = [(kind, rng.choice(colours)) for _ in range(count)]
        others = [k for k in d.kinds if k != kind]
        specs += [(rng.choice(others), rng.choice(colours)) for _ in range(rng.randint(0, 1))]
        img, objs, _ = d.scene(rng, size, specs)
        stem = pick(rng, "mcq.count", kinds=d.plural(kind), picture=picture)
        correct, pool = str(sum(o.kind == kind for o in objs)), [str(i) for i in range(1, 7)]
    elif topic == "larger":
        kinds = rng.sample(d.kinds, 2)
        img, draw = canvas(size)
        d.background(img, draw, rng, {"size": size})
        big, small = int(size * 0.42), int(size * 0.2)
        left_big = rng.random() < 0.5
        sides = (big, small) if left_big else (small, big)
        objs = []
        for i, (kind, side) in enumerate(zip(kinds, sides)):  # left object, then right
            x0 = int(size * (0.05 + 0.5 * i)) + (int(size * 0.45) - side) // 2
            y0 = (size - side) // 2
            obj = Obj(kind, rng.choice(colours), (x0, y0, x0 + side, y0 + side))
            d.draw_object(draw, obj, size, rng)
            objs.append(obj)
        stem, correct, pool = pick(rng, "mcq.larger"), objs[0 if left_big else 1].kind, kinds
    elif topic == "molecule":
        img, objs, counts = _molecule(rng, size)
        element = rng.choice(sorted(counts))
        stem = pick(rng, "mcq.molecule", element=element)
        correct, pool = str(counts[element]), [str(i) for i in range(1, 7)]
    else:  # lines: which series ends highest
        img, series = _line_chart(rng, size, rng.sample(list(DOMAINS["chart"].colours), 3))
        objs = []
        correct = max(series, key=lambda c: series[c][-1])
        stem, pool = pick(rng, "mcq.lines"), list(series)
    block, letter, shown = options_block(rng, correct, pool, n_opt)
    return Sample(img, f"{stem}\n{block}", letter,
                  truth=_truth(objs, topic=topic, correct=correct, options=shown))


def _molecule(rng: random.Random, size: int):
    """Atoms (coloured balls) on a chain with bonds; returns image, atoms and the count per element."""
    img, draw = canvas(size, (255, 255, 255))
    n = rng.randint(3, 6)
    elements = [rng.choice(sorted(ELEMENTS)) for _ in range(n)]
    r = max(2, size // 14)
    pts, objs = [], []
    x, y = size * 0.18, size * rng.uniform(0.3, 0.7)
    for _ in range(n):
        pts.append((x, y))
        x += size * 0.66 / max(1, n - 1)
        y = min(size * 0.8, max(size * 0.2, y + rng.choice([-1, 1]) * size * rng.uniform(0.08, 0.18)))
    draw.line(pts, fill=(110, 110, 110), width=max(1, size // 32))
    for (px, py), el in zip(pts, elements):
        box = (int(px - r), int(py - r), int(px + r) + 1, int(py + r) + 1)
        draw.ellipse((box[0], box[1], box[2] - 1, box[3] - 1), fill=ELEMENTS[el][1], outline=BLACK)
        objs.append(Obj(el, ELEMENTS[el][0], box))
    counts = {el: elements.count(el) for el in set(elements)}
    return img, objs, counts


def _plot_xy(size: int, i: int, n: int, v: float) -> tuple[float, float]:
    """Pixel position of point ``i`` of ``n`` with value ``v`` in 0..10 on the chart domain's axes."""
    x = size * (0.16 + 0.78 * (i + 0.5) / n)
    y = size * (0.88 - 0.8 * v / 10)
    return x, y


def _axes(rng: random.Random, size: int):
    img, draw = canvas(size)
    DOMAINS["chart"].background(img, draw, rng, {"size": size})
    for v in range(2, 11, 2):  # light grid lines at every second unit to read values off
        y = _plot_xy(size, 0, 1, v)[1]
        draw.line((size * 0.11, y, size * 0.97, y), fill=(222, 222, 222))
    return img, draw


def _line_chart(rng: random.Random, size: int, colours: list[str]):
    img, draw = _axes(rng, size)
    n = rng.randint(4, 6)
    series = {}
    ends = rng.sample(range(1, 10), len(colours))
    for colour, end in zip(colours, ends):
        vals = [rng.randint(1, 9) for _ in range(n - 1)] + [end]
        series[colour] = vals
        pts = [_plot_xy(size, i, n, v) for i, v in enumerate(vals)]
        draw.line(pts, fill=DOMAINS["chart"].colours[colour], width=line_width(size) + 1)
    return img, series


def _trend_values(rng: random.Random, trend: str, n: int) -> list[int]:
    """A series with an unambiguous trend: net change >= 3 for up/down, constant +-1 for flat."""
    while True:
        if trend == "flat":
            base = rng.randint(3, 7)
            vals = [base + rng.choice([-1, 0, 0, 1]) for _ in range(n - 1)] + [base]
        else:
            vals = [rng.randint(1, 4)]
            for _ in range(n - 1):
                vals.append(min(9, max(1, vals[-1] + rng.choice([-1, 1, 1, 2, 2]))))
            if trend == "down":
                vals = [10 - v for v in vals]
        diff = vals[-1] - vals[0]
        if (trend == "up" and diff >= 3) or (trend == "down" and diff <= -3) or trend == "flat":
            return vals


@family("chart", "trend of a series or value of a bar (finance charts, ChartQA)", chart="line",
        questions=["trend"], answer_format="word", trends=["up", "down"], suffixes={})
def chart(rng, d: Domain, size: int, opts: dict) -> Sample:
    qtype = choose_types(rng, opts["questions"], ("trend", "value", "max"))
    if qtype in ("value", "max"):
        img, draw = _axes(rng, size)
        colours = rng.sample(list(DOMAINS["chart"].colours), rng.randint(3, 4))
        vals = rng.sample(range(1, 10), len(colours))
        objs = []
        for i, (colour, v) in enumerate(zip(colours, vals)):
            x, y = _plot_xy(size, i, len(colours), v)
            half = size * 0.78 / len(colours) * 0.3
            box = (int(x - half), int(y), int(x + half) + 1, int(size * 0.88))
            draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=DOMAINS["chart"].colours[colour])
            objs.append(Obj("bar", colour, box, {"value": v}))
        if qtype == "value":
            target = rng.choice(objs)
            return Sample(img, pick(rng, "chart.value", colour=target.colour), str(target.extra["value"]),
                          truth=_truth(objs, target=target.as_dict()))
        top = max(objs, key=lambda o: o.extra["value"])
        return Sample(img, pick(rng, "chart.max"), top.colour, truth=_truth(objs, target=top.as_dict()))
    trend = rng.choice(opts["trends"])
    n = rng.randint(5, 7)
    vals = _trend_values(rng, trend, n)
    img, draw = _axes(rng, size)
    if opts["chart"] == "candle":
        subject = "stock price"
        prev = vals[0] + rng.choice([-1, 1]) * 0.5
        for i, close in enumerate(vals):
            x, yc = _plot_xy(size, i, n, close)
            yo = _plot_xy(size, i, n, prev)[1]
            up = close >= prev
            col = (30, 160, 60) if up else (215, 40, 40)
            half = max(1, int(size * 0.78 / n * 0.28))
            hi, lo = _plot_xy(size, i, n, max(close, prev) + 0.6)[1], _plot_xy(size, i, n, min(close, prev) - 0.6)[1]
            draw.line((x, hi, x, lo), fill=BLACK)
            draw.rectangle((x - half, min(yc, yo), x + half, max(yc, yo) + 1), fill=col)
            prev = close
    else:
        subject = "line"
        draw.line([_plot_xy(size, i, n, v) for i, v in enumerate(vals)], fill=(40, 80, 230), width=line_width(size) + 1)
    fmt = opts["answer_format"]
    if fmt == "mixed":
        fmt = rng.choice(["yesno", "letter"])
    suffix = opts["suffixes"].get(fmt)
    truth = {"values": vals, "trend": trend, "format": fmt}
    if fmt == "yesno":
        direction = rng.choice(["up", "down"])
        q = pick(rng, "chart.trend_yesno", subject=subject, direction=direction)
        return Sample(img, q, "yes" if direction == trend else "no", truth={**truth, "asked": direction},
                      suffix=suffix)
    if fmt == "letter":
        block, letter, _ = options_block(rng, trend, ["up", "down", "flat"], 3)
        q = pick(rng, "chart.trend_mcq", subject=subject) + "\n" + block
        return Sample(img, q, letter, truth=truth, suffix=suffix)
    return Sample(img, pick(rng, "chart.trend", subject=subject), trend, truth=truth, suffix=suffix)


def _sign(draw, size: int, word: str) -> tuple:
    box = (int(size * 0.12), int(size * 0.1), int(size * 0.88), int(size * 0.46))
    draw.rectangle((size * 0.48, box[3], size * 0.52, size * 0.8), fill=(90, 70, 50))
    draw.rectangle(box, fill=(250, 250, 250), outline=BLACK, width=line_width(size))
    text_centred(draw, word, (box[0] + 2, box[1] + 2, box[2] - 2, box[3] - 2), BLACK)
    return box


@family("ocr", "read a rendered word or number", layout="page", questions=["title"], n_references=1)
def ocr(rng, d: Domain, size: int, opts: dict) -> Sample:
    layout = rng.choice(opts["layout"]) if isinstance(opts["layout"], list) else opts["layout"]
    word = rng.choice(WORDS)
    img, draw = canvas(size)
    refs = None
    truth = {"word": word.lower(), "layout": layout}
    if layout == "sign":  # TextVQA: a sign in an outdoor scene
        d.background(img, draw, rng, {"size": size})
        truth["box"] = list(_sign(draw, size, word))
        q, answer = pick(rng, "ocr.sign"), word.lower()
        n_ref = opts["n_references"]
        if n_ref > 1:  # annotators mostly agree; one or two give another answer (VQA soft accuracy)
            refs = [answer] * n_ref
            for i in rng.sample(range(n_ref), rng.randint(0, 2)):
                refs[i] = rng.choice(["unanswerable", rng.choice(WORDS).lower()])
    elif layout == "cover":  # OCR-VQA: book cover, title on top; the colour gives the genre
        genre = rng.choice(sorted(GENRES))
        draw.rectangle((0, 0, size, size), fill=GENRES[genre])
        draw.rectangle((size * 0.08, size * 0.08, size * 0.92, size * 0.4), fill=shade(GENRES[genre], 1.8))
        text_centred(draw, word, (int(size * 0.1), int(size * 0.1), int(size * 0.9), int(size * 0.38)), BLACK)
        DOMAINS["diagram"].drawer(draw, rng.choice(DOMAINS["diagram"].kinds), (int(size * 0.35), int(size * 0.5),
                                  int(size * 0.65), int(size * 0.8)), WHITE, line_width(size), rng)
        qtype = choose_types(rng, opts["questions"], ("title", "genre", "genre_yesno"))
        truth["genre"] = genre
        if qtype == "title":
            q, answer = pick(rng, "ocr.title"), word.lower()
        elif qtype == "genre":
            q, answer = pick(rng, "ocr.genre"), genre
        else:
            asked = rng.choice(sorted(GENRES))
            q, answer = pick(rng, "ocr.genre_yesno", genre=asked), "yes" if asked == genre else "no"
    elif layout == "infographic":  # two labelled numbers; read the one next to the asked word
        words = rng.sample(WORDS, 2)
        values = [rng.randint(0, 9) for _ in words]
        DOMAINS["document"].background(img, draw, rng, {"size": size, "lines": False})
        for i, (w, v) in enumerate(zip(words, values)):
            y0 = int(size * (0.08 + 0.46 * i))
            text_centred(draw, w, (int(size * 0.04), y0, int(size * 0.66), y0 + int(size * 0.38)), BLACK)
            draw.rectangle((size * 0.7, y0, size * 0.96, y0 + size * 0.38), fill=(40, 80, 230))
            text_centred(draw, str(v), (int(size * 0.71), y0 + 1, int(size * 0.95), y0 + int(size * 0.37)), WHITE)
        k = rng.randrange(2)
        q, answer = pick(rng, "ocr.value", word=words[k].lower()), str(values[k])
        truth.update(words=[w.lower() for w in words], values=values)
    else:  # page / document: a big word (title) and, for documents, a boxed second word
        DOMAINS["document"].background(img, draw, rng, {"size": size, "lines": False})
        text_centred(draw, word, (int(size * 0.06), int(size * 0.04), int(size * 0.94), int(size * 0.36)), BLACK)
        for y in range(int(size * 0.44), int(size * 0.95), max(3, size // 10)):
            draw.line((size * 0.08, y, size * rng.uniform(0.4, 0.9), y), fill=(192, 192, 192), width=max(1, size // 48))
        qtype = choose_types(rng, opts["questions"], ("title", "boxed")) if layout == "document" else "page"
        if qtype == "boxed":
            other = rng.choice([w for w in WORDS if w != word])
            bx = (int(size * 0.3), int(size * 0.6), int(size * 0.95), int(size * 0.95))
            draw.rectangle(bx, fill=(255, 255, 255), outline=BLACK, width=line_width(size))
            text_centred(draw, other, (bx[0] + 2, bx[1] + 2, bx[2] - 2, bx[3] - 2), BLACK)
            q, answer = pick(rng, "ocr.boxed"), other.lower()
            truth["boxed"] = other.lower()
        else:
            q, answer = pick(rng, "ocr.doc_title" if qtype == "title" else "ocr.page"), word.lower()
    return Sample(img, q, answer, references=refs, truth=truth)


@family("math", "arithmetic on rendered digits, or on object counts (CLEVR-Math)", mode="digits", ops=["+", "-"],
        operations=["sub_colour", "sub_kind", "add"])
def math(rng, d: Domain, size: int, opts: dict) -> Sample:
    if opts["mode"] == "objects":
        op = choose_types(rng, opts["operations"], ("sub_colour", "sub_kind", "add"))
        n = rng.randint(2, min(6, d.max_objects))
        specs = [(rng.choice(d.kinds), rng.choice(list(d.colours))) for _ in range(n)]
        img, objs, _ = d.scene(rng, size, specs)
        # the sum behind the answer, as a worked reply writes it: objects counted in the picture, then the step
        if op == "sub_colour":
            colour = rng.choice(objs).colour
            q, a, sign, b = pick(rng, "math.sub_colour", colour=colour), n, "-", sum(o.colour == colour for o in objs)
        elif op == "sub_kind":
            kind = rng.choice(objs).kind
            q, a, sign, b = (pick(rng, "math.sub_kind", kind=kind, kinds=d.plural(kind)), n, "-",
                             sum(o.kind == kind for o in objs))
        else:
            kind, m = rng.choice(objs).kind, rng.randint(1, 3)
            q, a, sign, b = pick(rng, "math.add", n=m, kinds=d.plural(kind)), sum(o.kind == kind for o in objs), "+", m
        ans = a + b if sign == "+" else a - b
        return Sample(img, q, str(ans), truth=_truth(objs, operation=op, result=ans, a=a, op=sign, b=b))
    op = rng.choice(opts["ops"])
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    if op == "-" and b > a:
        a, b = b, a
    result = {"+": a + b, "-": a - b, "x": a * b}[op]
    img, draw = canvas(size)
    d.background(img, draw, rng, {"size": size, "lines": False})
    expr = f"{a}{op}{b}=?"
    y0 = int(size * rng.uniform(0.2, 0.45))
    text_centred(draw, expr, (int(size * 0.04), y0, int(size * 0.96), y0 + int(size * 0.34)), BLACK,
                 fit_font(expr, int(size * 0.92), int(size * 0.34)))
    return Sample(img, pick(rng, "math.digits"), str(result), truth={"a": a, "b": b, "op": op, "result": result})


@family("gui", "click target on a screen, answered with a normalised point", n_buttons=[2, 4])
def gui(rng, d: Domain, size: int, opts: dict) -> Sample:
    n = int_range(rng, opts["n_buttons"], cap=6)
    labels = rng.sample(GUI_LABELS, n)
    img, draw = canvas(size)
    d.background(img, draw, rng, {"size": size})
    rows, cols = 3, 2
    cells = rng.sample(range(rows * cols), n)
    objs = []
    cw, ch = size * 0.92 / cols, size * 0.86 / rows
    for label, cell in zip(labels, cells):
        r, c = divmod(cell, cols)
        x0, y0 = int(size * 0.04 + c * cw + cw * 0.05), int(size * 0.12 + r * ch + ch * 0.12)
        box = (x0, y0, x0 + int(cw * 0.9), y0 + int(ch * 0.76))
        colour = rng.choice(list(d.colours))
        draw.rounded_rectangle((box[0], box[1], box[2] - 1, box[3] - 1), radius=max(1, size // 20),
                               fill=d.colours[colour])
        text_centred(draw, label, (box[0] + 1, box[1] + 1, box[2] - 1, box[3] - 1), WHITE)
        objs.append(Obj("button", colour, box, {"label": label.lower()}))
    target = objs[0]
    cx, cy = target.centre
    answer = norm_point(cx, cy, size)
    return Sample(img, pick(rng, "gui", label=target.extra["label"]), answer, references=norm_box(target.box, size),
                  truth=_truth(objs, target=target.as_dict()))

"""Object drawers: how each domain's object kinds look (natural icons, top views, cells, cars, 3-D solids).

Every drawer paints inside the object's box with the object's fill colour covering a large part of
it (tests check that colour's pixels are there) and uses only that colour, black, or shades of it,
so a colour question has one answer.
"""

from __future__ import annotations

import random

from PIL import ImageDraw

from cvitkit.data.synthetic.render import BLACK, RGB, WHITE, Box, shape


def shade(rgb: RGB, factor: float) -> RGB:
    """Darker (factor < 1) or lighter (factor > 1) version of ``rgb``."""
    if factor <= 1:
        return tuple(int(c * factor) for c in rgb)
    return tuple(int(c + (255 - c) * (factor - 1)) for c in rgb)


def _sub(box: Box, fx0: float, fy0: float, fx1: float, fy1: float) -> Box:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    return (x0 + int(w * fx0), y0 + int(h * fy0), x0 + max(int(w * fx1), int(w * fx0) + 1),
            y0 + max(int(h * fy1), int(h * fy0) + 1))


# ---- natural icons (side view) -------------------------------------------------------------------

def natural(draw: ImageDraw.ImageDraw, kind: str, box: Box, fill: RGB, lw: int, rng: random.Random) -> None:
    o = BLACK if box[2] - box[0] >= 10 else None  # outlines would swallow very small objects
    if kind in ("ball", "box"):
        shape(draw, kind, box, fill, o, lw)
    elif kind == "house":
        shape(draw, "square", _sub(box, 0.1, 0.42, 0.9, 1.0), fill, o, lw)
        shape(draw, "triangle", _sub(box, 0.0, 0.0, 1.0, 0.45), (110, 60, 30), o, lw)
    elif kind == "tree":
        shape(draw, "square", _sub(box, 0.42, 0.6, 0.58, 1.0), (110, 70, 30), None)
        shape(draw, "circle", _sub(box, 0.05, 0.0, 0.95, 0.72), fill, o, lw)
    elif kind == "car":
        shape(draw, "square", _sub(box, 0.22, 0.25, 0.78, 0.55), fill, o, lw)
        shape(draw, "square", _sub(box, 0.0, 0.5, 1.0, 0.85), fill, o, lw)
        shape(draw, "circle", _sub(box, 0.1, 0.7, 0.35, 1.0), BLACK)
        shape(draw, "circle", _sub(box, 0.65, 0.7, 0.9, 1.0), BLACK)
    elif kind == "fish":
        shape(draw, "circle", _sub(box, 0.0, 0.2, 0.75, 0.8), fill, o, lw)
        draw.polygon([(_sub(box, 0.7, 0.5, 0.71, 0.51)[0], (box[1] + box[3]) / 2),
                      (box[2] - 1, box[1] + (box[3] - box[1]) * 0.15),
                      (box[2] - 1, box[1] + (box[3] - box[1]) * 0.85)], fill=fill, outline=o)
    elif kind == "flower":
        shape(draw, "star", box, fill, o, lw)
        shape(draw, "circle", _sub(box, 0.4, 0.4, 0.6, 0.6), BLACK)
    elif kind == "kite":
        shape(draw, "diamond", _sub(box, 0.1, 0.0, 0.9, 0.8), fill, o, lw)
        tail = (*_sub(box, 0.5, 0.8, 0.51, 0.81)[:2], box[0] + (box[2] - box[0]) * 0.3, box[3] - 1)
        draw.line(tail, fill=BLACK, width=lw)
    else:
        raise ValueError(f"natural domain has no kind {kind!r}")


# ---- remote sensing (top view) -------------------------------------------------------------------

def remote(draw: ImageDraw.ImageDraw, kind: str, box: Box, fill: RGB, lw: int, rng: random.Random) -> None:
    if kind == "building":
        shape(draw, "square", box, fill, shade(fill, 0.5), lw)
        draw.line((box[0], box[1], box[2] - 1, box[3] - 1), fill=shade(fill, 0.7), width=lw)
    elif kind == "car":
        shape(draw, "square", _sub(box, 0.3, 0.05, 0.7, 0.95), fill, BLACK, lw)
        shape(draw, "square", _sub(box, 0.35, 0.3, 0.65, 0.45), BLACK)
    elif kind == "tank":
        shape(draw, "circle", box, fill, shade(fill, 0.5), lw)
        shape(draw, "circle", _sub(box, 0.3, 0.3, 0.7, 0.7), shade(fill, 0.6))
    elif kind == "pool":
        inset = (box[3] - box[1]) // 5
        draw.rounded_rectangle((box[0], box[1] + inset, box[2] - 1, box[3] - 1 - inset),
                               radius=max(1, (box[2] - box[0]) // 5), fill=fill, outline=WHITE, width=lw)
    elif kind == "court":
        shape(draw, "square", box, fill, WHITE, lw)
        cx = (box[0] + box[2]) // 2
        draw.line((cx, box[1], cx, box[3] - 1), fill=WHITE, width=lw)
    else:
        raise ValueError(f"remote domain has no kind {kind!r}")


# ---- medical (grayscale tissue) ------------------------------------------------------------------

def medical(draw: ImageDraw.ImageDraw, kind: str, box: Box, fill: RGB, lw: int, rng: random.Random) -> None:
    other = (35, 35, 35) if sum(fill) > 300 else (235, 235, 235)
    if kind == "cell":
        shape(draw, "circle", box, fill)
        shape(draw, "circle", _sub(box, 0.38, 0.38, 0.62, 0.62), other)
    elif kind == "nodule":
        shape(draw, "circle", _sub(box, 0.1, 0.1, 0.9, 0.9), fill)
    elif kind == "cyst":
        shape(draw, "circle", box, fill)
        shape(draw, "circle", _sub(box, 0.3, 0.3, 0.7, 0.7), (105, 105, 105))
    elif kind == "lesion":
        x0, y0, x1, y1 = box
        cx, cy, r = (x0 + x1 - 1) / 2, (y0 + y1 - 1) / 2, (x1 - x0 - 1) / 2
        import math

        pts = []
        for i in range(7):
            a = 2 * math.pi * i / 7
            rr = r * rng.uniform(0.65, 1.0)
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        draw.polygon(pts, fill=fill)
    else:
        raise ValueError(f"medical domain has no kind {kind!r}")


# ---- driving (rear view of road users) -----------------------------------------------------------

def driving(draw: ImageDraw.ImageDraw, kind: str, box: Box, fill: RGB, lw: int, rng: random.Random) -> None:
    o = BLACK if box[2] - box[0] >= 14 else None
    if kind == "car":
        shape(draw, "square", _sub(box, 0.1, 0.35, 0.9, 0.85), fill, o, lw)
        shape(draw, "square", _sub(box, 0.25, 0.45, 0.75, 0.6), (40, 40, 60))
        shape(draw, "square", _sub(box, 0.12, 0.85, 0.3, 1.0), BLACK)
        shape(draw, "square", _sub(box, 0.7, 0.85, 0.88, 1.0), BLACK)
    elif kind == "truck":
        shape(draw, "square", _sub(box, 0.05, 0.05, 0.95, 0.88), fill, o, lw)
        shape(draw, "square", _sub(box, 0.1, 0.88, 0.3, 1.0), BLACK)
        shape(draw, "square", _sub(box, 0.7, 0.88, 0.9, 1.0), BLACK)
    elif kind == "bus":
        shape(draw, "square", _sub(box, 0.0, 0.2, 1.0, 0.9), fill, o, lw)
        for fx in (0.08, 0.38, 0.68):
            shape(draw, "square", _sub(box, fx, 0.3, fx + 0.24, 0.5), (40, 40, 60))
    elif kind == "sign":
        shape(draw, "square", _sub(box, 0.45, 0.5, 0.55, 1.0), (90, 90, 90))
        shape(draw, "circle", _sub(box, 0.15, 0.0, 0.85, 0.6), fill, o, lw)
    elif kind == "cone":
        shape(draw, "triangle", _sub(box, 0.2, 0.05, 0.8, 0.9), fill, o, lw)
        shape(draw, "square", _sub(box, 0.1, 0.88, 0.9, 1.0), BLACK)
    elif kind == "person":
        shape(draw, "circle", _sub(box, 0.35, 0.0, 0.65, 0.25), (230, 190, 160), o, 1)
        shape(draw, "square", _sub(box, 0.2, 0.25, 0.8, 0.68), fill, o, lw)
        shape(draw, "square", _sub(box, 0.3, 0.65, 0.45, 1.0), BLACK)
        shape(draw, "square", _sub(box, 0.55, 0.65, 0.7, 1.0), BLACK)
    else:
        raise ValueError(f"driving domain has no kind {kind!r}")


# ---- rendered 3-D solids (CLEVR-like) ------------------------------------------------------------

def solid(draw: ImageDraw.ImageDraw, kind: str, box: Box, fill: RGB, lw: int, rng: random.Random) -> None:
    light, dark = shade(fill, 1.35), shade(fill, 0.7)
    x0, y0, x1, y1 = box
    if kind == "cube":
        d = (x1 - x0) // 4
        draw.polygon([(x0, y0 + d), (x0 + d, y0), (x1 - 1, y0), (x1 - 1 - d, y0 + d)], fill=light)
        draw.polygon([(x1 - 1 - d, y0 + d), (x1 - 1, y0), (x1 - 1, y1 - 1 - d), (x1 - 1 - d, y1 - 1)], fill=dark)
        draw.rectangle((x0, y0 + d, x1 - 1 - d, y1 - 1), fill=fill)
    elif kind == "sphere":
        shape(draw, "circle", box, fill)
        shape(draw, "circle", _sub(box, 0.22, 0.18, 0.45, 0.4), light)
    elif kind == "cylinder":
        e = max(2, (y1 - y0) // 4)
        shape(draw, "square", (x0, y0 + e // 2, x1, y1 - e // 2), fill)
        draw.ellipse((x0, y1 - 1 - e, x1 - 1, y1 - 1), fill=fill)
        draw.ellipse((x0, y0, x1 - 1, y0 + e), fill=light)
    elif kind == "cone":
        e = max(2, (y1 - y0) // 4)
        draw.ellipse((x0, y1 - 1 - e, x1 - 1, y1 - 1), fill=dark)
        draw.polygon([((x0 + x1 - 1) / 2, y0), (x1 - 1, y1 - 1 - e / 2), (x0, y1 - 1 - e / 2)], fill=fill)
    else:
        raise ValueError(f"render domain has no kind {kind!r}")


# ---- flat shapes (diagram, chart, document, gui, toy) ---------------------------------------------

def outlined(draw: ImageDraw.ImageDraw, kind: str, box: Box, fill: RGB, lw: int, rng: random.Random) -> None:
    shape(draw, kind, box, fill, BLACK, lw)


def flat(draw: ImageDraw.ImageDraw, kind: str, box: Box, fill: RGB, lw: int, rng: random.Random) -> None:
    """No outline, a soft gray shadow offset down-right (the pretraining 'toy' look)."""
    off = max(1, (box[2] - box[0]) // 10)
    shape(draw, kind, (box[0] + off, box[1] + off, box[2], box[3]), (140, 140, 150), None)
    shape(draw, kind, (box[0], box[1], box[2] - off, box[3] - off), fill, None)


def icon(draw: ImageDraw.ImageDraw, kind: str, box: Box, fill: RGB, lw: int, rng: random.Random) -> None:
    """An app icon: a rounded tile in the fill colour with a white glyph."""
    draw.rounded_rectangle((box[0], box[1], box[2] - 1, box[3] - 1), radius=max(1, (box[2] - box[0]) // 4), fill=fill)
    shape(draw, kind, _sub(box, 0.25, 0.25, 0.75, 0.75), WHITE, None)

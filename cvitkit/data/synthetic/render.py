"""Drawing primitives for the synthetic images (PIL only).

Everything is drawn in pixel coordinates scaled from the canvas side, with antialiasing off
(``fontmode = "1"``, no supersampling) so that tiny images stay crisp and the bytes depend only on the
Pillow build, never on timing or threads.

Object boxes are ``(x0, y0, x1, y1)`` integers with the drawn pixels inside ``[x0, x1) × [y0, y1)``;
the grounding and GUI answers are these boxes divided by the canvas side.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

Box = tuple[int, int, int, int]
RGB = tuple[int, int, int]

BLACK: RGB = (0, 0, 0)
WHITE: RGB = (255, 255, 255)


@dataclass
class Obj:
    """One drawn object: what the questions talk about and where it is."""

    kind: str
    colour: str
    box: Box
    extra: dict = field(default_factory=dict)

    @property
    def centre(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2

    def as_dict(self) -> dict:
        return {"kind": self.kind, "colour": self.colour, "box": list(self.box), **self.extra}


@lru_cache(maxsize=64)
def font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``px`` pixels (no font file is read from the system)."""
    try:
        return ImageFont.load_default(size=max(6, px))
    except (OSError, ImportError):  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _bbox(f, text: str) -> Box:
    """Ink box of ``text`` as drawn without antialiasing (mode "1" glyphs are wider than "L" ones)."""
    try:
        return f.getbbox(text, mode="1")
    except TypeError:  # the bitmap fallback font takes no mode
        return f.getbbox(text)


def fit_font(text: str, width: int, height: int):
    """The largest bundled font whose rendering of ``text`` fits in ``width`` × ``height``."""
    for px in range(max(6, height), 5, -1):
        f = font(px)
        x0, y0, x1, y1 = _bbox(f, text)
        if x1 - x0 <= width and y1 - y0 <= height:
            return f
    return font(6)


def canvas(size: int, colour: RGB = WHITE) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", (size, size), colour)
    draw = ImageDraw.Draw(img)
    draw.fontmode = "1"  # no antialiasing: crisp glyphs at 64 px and deterministic bytes
    return img, draw


def line_width(size: int) -> int:
    return max(1, size // 40)


def text_centred(draw: ImageDraw.ImageDraw, text: str, box: Box, fill: RGB, f=None) -> Box:
    """Draw ``text`` centred in ``box`` (font fitted when ``f`` is None); returns the ink box."""
    x0, y0, x1, y1 = box
    f = f or fit_font(text, x1 - x0, y1 - y0)
    bx0, by0, bx1, by1 = _bbox(f, text)
    x = x0 + ((x1 - x0) - (bx1 - bx0)) // 2 - bx0
    y = y0 + ((y1 - y0) - (by1 - by0)) // 2 - by0
    draw.text((x, y), text, font=f, fill=fill)
    return x + bx0, y + by0, x + bx1, y + by1


def _poly(cx: float, cy: float, r: float, n: int, start: float = -90.0, inner: float | None = None):
    pts = []
    steps = n * 2 if inner else n
    for i in range(steps):
        rad = r if (inner is None or i % 2 == 0) else r * inner
        a = math.radians(start + 360.0 * i / steps)
        pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    return pts


def shape(draw: ImageDraw.ImageDraw, kind: str, box: Box, fill: RGB | None, outline: RGB | None = None,
          width: int = 1) -> None:
    """Draw a geometric shape filling ``box`` (inclusive PIL coordinates are handled here)."""
    x0, y0, x1, y1 = box
    x1, y1 = x1 - 1, y1 - 1
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, min(x1 - x0, y1 - y0) / 2
    kw = {"fill": fill, "outline": outline, "width": width}
    if kind in ("circle", "ball", "sphere", "nodule", "dot"):
        draw.ellipse((x0, y0, x1, y1), **kw)
    elif kind in ("square", "box"):
        draw.rectangle((x0, y0, x1, y1), **kw)
    elif kind == "triangle":
        draw.polygon([(cx, y0), (x1, y1), (x0, y1)], **kw)
    elif kind == "diamond":
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], **kw)
    elif kind == "star":
        draw.polygon(_poly(cx, cy, r, 5, inner=0.45), **kw)
    elif kind == "hexagon":
        draw.polygon(_poly(cx, cy, r, 6, start=0), **kw)
    elif kind == "cross":
        t = max(1, (x1 - x0) // 3)
        draw.rectangle((x0, cy - t / 2, x1, cy + t / 2), fill=fill or outline)
        draw.rectangle((cx - t / 2, y0, cx + t / 2, y1), fill=fill or outline)
    elif kind == "ring":
        draw.ellipse((x0, y0, x1, y1), fill=fill, outline=outline, width=width)
        h = max(1, (x1 - x0) // 4)
        draw.ellipse((x0 + h, y0 + h, x1 - h, y1 - h), fill=outline if outline else WHITE)
    elif kind == "heart":
        w = (x1 - x0) / 2
        draw.ellipse((x0, y0, cx, y0 + w), fill=fill)
        draw.ellipse((cx, y0, x1, y0 + w), fill=fill)
        draw.polygon([(x0, y0 + w / 2), (x1, y0 + w / 2), (cx, y1)], fill=fill)
    elif kind == "arrow":
        t = max(1, (y1 - y0) // 4)
        draw.rectangle((x0, cy - t / 2, cx, cy + t / 2), fill=fill or outline)
        draw.polygon([(cx, y0), (x1, cy), (cx, y1)], fill=fill or outline)
    else:
        raise ValueError(f"unknown shape {kind!r}")


def grid_boxes(rng: random.Random, n: int, region: Box, rows: int, cols: int, scale=(0.62, 0.85),
               jitter: bool = True) -> list[Box]:
    """``n`` non-overlapping object boxes, one per distinct grid cell of ``region``.

    One object per cell keeps counts, relations and referring expressions unambiguous; sizes come
    from ``scale`` (fraction of the cell side) and a small jitter keeps positions varied.
    """
    if n > rows * cols:
        raise ValueError(f"{n} objects do not fit a {rows}x{cols} grid")
    rx0, ry0, rx1, ry1 = region
    cw, ch = (rx1 - rx0) / cols, (ry1 - ry0) / rows
    cells = rng.sample(range(rows * cols), n)
    boxes = []
    for cell in cells:
        r, c = divmod(cell, cols)
        side = max(3, int(min(cw, ch) * rng.uniform(*scale)))
        slack_x, slack_y = int(cw - side), int(ch - side)
        ox = rng.randint(0, slack_x) if jitter and slack_x > 0 else slack_x // 2
        oy = rng.randint(0, slack_y) if jitter and slack_y > 0 else slack_y // 2
        x0, y0 = int(rx0 + c * cw) + ox, int(ry0 + r * ch) + oy
        boxes.append((x0, y0, x0 + side, y0 + side))
    return boxes


def vertical_gradient(img: Image.Image, top: RGB, bottom: RGB, y0: int = 0, y1: int | None = None) -> None:
    draw = ImageDraw.Draw(img)
    y1 = img.height if y1 is None else y1
    span = max(1, y1 - y0 - 1)
    for y in range(y0, y1):
        t = (y - y0) / span
        draw.line((0, y, img.width, y), fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))


def speckle(img: Image.Image, rng: random.Random, colours: list[RGB], n: int, radius: int | None = None) -> None:
    """Scatter ``n`` small dots (texture for grass, fields, tissue); single pixels below 48 px."""
    draw = ImageDraw.Draw(img)
    radius = (1 if img.width >= 48 else 0) if radius is None else radius
    for _ in range(n):
        x, y = rng.randrange(img.width), rng.randrange(img.height)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=rng.choice(colours))


def covered_lens(size: int, rng: random.Random) -> Image.Image:
    """A near-uniform dark frame (finger over the lens): nothing in it can be answered."""
    base = rng.randint(10, 45)
    img, draw = canvas(size, (base, base, base + rng.randint(0, 10)))
    for _ in range(size):
        x, y = rng.randrange(size), rng.randrange(size)
        v = base + rng.randint(-8, 8)
        draw.point((x, y), fill=(max(v, 0), max(v, 0), max(v, 0)))
    return img


def degrade(img: Image.Image, rng: random.Random, strength: float = 1.0) -> Image.Image:
    """Mild blind-user photo effects (tilt, blur, dim) that keep the content recognisable."""
    from PIL import ImageEnhance, ImageFilter

    angle = rng.uniform(-12, 12) * strength
    img = img.rotate(angle, resample=Image.Resampling.NEAREST, fillcolor=(40, 40, 40))
    if rng.random() < 0.5 * strength:
        img = img.filter(ImageFilter.GaussianBlur(radius=img.width / 128))
    return ImageEnhance.Brightness(img).enhance(rng.uniform(0.7, 1.0))

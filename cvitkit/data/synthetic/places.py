"""Scene backgrounds of the ``places`` domain (Places365-like scene classes).

Each class has a distinct layout and palette (sea band, tree rows, dunes, skyline, peaks, ...) with
random variation, so the class is visible at 32 px and never depends on one pixel.
"""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

from cvitkit.data.synthetic.render import speckle, vertical_gradient

PLACES = ("beach", "forest", "desert", "city", "mountain", "lake", "snowfield", "farm")
#: Phrase used in captions ("a red ball on a beach").
PLACE_PHRASE = {"beach": "on a beach", "forest": "in a forest", "desert": "in a desert", "city": "in a city",
                "mountain": "in the mountains", "lake": "by a lake", "snowfield": "in the snow", "farm": "on a farm"}


def _sky(img: Image.Image, horizon: int, rng: random.Random, warm: bool = False) -> None:
    top = (240, 170, 110) if warm else (100, 160, 230)
    vertical_gradient(img, top, (200, 225, 245), 0, horizon)


def _tree(draw: ImageDraw.ImageDraw, x: float, base: float, h: float, colour=(30, 110, 40)) -> None:
    draw.polygon([(x, base - h), (x + h * 0.35, base), (x - h * 0.35, base)], fill=colour)
    draw.rectangle((x - h * 0.05, base, x + h * 0.05, base + h * 0.12), fill=(90, 60, 30))


def draw_place(img: Image.Image, draw: ImageDraw.ImageDraw, rng: random.Random, place: str, s: int) -> None:
    h = int(s * rng.uniform(0.36, 0.46))  # horizon
    if place == "beach":
        _sky(img, h, rng)
        sea = int(s * rng.uniform(0.52, 0.6))
        draw.rectangle((0, h, s, sea), fill=(30, 110, 190))
        draw.rectangle((0, sea, s, s), fill=(235, 210, 150))
        speckle(img, rng, [(215, 190, 130)], s // 3)
    elif place == "forest":
        _sky(img, h, rng)
        draw.rectangle((0, h, s, s), fill=(50, 100, 45))
        for _ in range(rng.randint(6, 10)):
            _tree(draw, rng.uniform(0, s), h + rng.uniform(0, s * 0.25), s * rng.uniform(0.25, 0.45))
    elif place == "desert":
        _sky(img, h, rng, warm=True)
        draw.rectangle((0, h, s, s), fill=(225, 185, 110))
        for _ in range(3):
            cx = rng.uniform(0, s)
            draw.ellipse((cx - s * 0.4, h - s * 0.08, cx + s * 0.4, h + s * 0.2), fill=(210, 165, 95))
        draw.ellipse((s * 0.75, s * 0.06, s * 0.9, s * 0.21), fill=(255, 240, 150))
    elif place == "city":
        _sky(img, h, rng)
        draw.rectangle((0, h, s, s), fill=(90, 90, 95))
        x = 0.0
        while x < s:
            w = s * rng.uniform(0.12, 0.22)
            top = h - s * rng.uniform(0.1, 0.32)
            grey = rng.randint(120, 170)
            draw.rectangle((x, top, x + w - 1, h), fill=(grey, grey, grey + 10))
            for wy in range(int(top) + 2, h - 1, max(3, s // 16)):
                draw.line((x + 2, wy, x + w - 3, wy), fill=(250, 230, 120), width=1)
            x += w
    elif place == "mountain":
        _sky(img, h, rng)
        draw.rectangle((0, h, s, s), fill=(105, 130, 85))
        for _ in range(3):
            cx, ph = rng.uniform(0, s), s * rng.uniform(0.25, 0.38)
            draw.polygon([(cx - s * 0.3, h), (cx, h - ph), (cx + s * 0.3, h)], fill=(115, 110, 120))
            draw.polygon([(cx - s * 0.08, h - ph * 0.73), (cx, h - ph), (cx + s * 0.08, h - ph * 0.73)],
                         fill=(250, 250, 250))
    elif place == "lake":
        _sky(img, h, rng)
        draw.rectangle((0, h, s, s), fill=(85, 150, 70))
        draw.ellipse((s * 0.05, h + s * 0.04, s * 0.95, s * 0.62), fill=(40, 130, 200))
        for _ in range(3):
            _tree(draw, rng.uniform(0, s), h + s * 0.02, s * 0.16)
    elif place == "snowfield":
        vertical_gradient(img, (170, 190, 215), (225, 232, 242), 0, h)
        draw.rectangle((0, h, s, s), fill=(245, 247, 252))
        for _ in range(rng.randint(2, 4)):
            _tree(draw, rng.uniform(0, s), h + rng.uniform(0, s * 0.1), s * 0.22, colour=(20, 80, 50))
    elif place == "farm":
        _sky(img, h, rng)
        colours = [(200, 180, 70), (120, 160, 60), (170, 130, 70)]
        band = max(2, s // 10)
        for i, y in enumerate(range(h, s, band)):
            draw.rectangle((0, y, s, y + band), fill=colours[i % 3])
        bx = rng.uniform(0.1, 0.6) * s
        draw.rectangle((bx, h - s * 0.16, bx + s * 0.2, h + 1), fill=(170, 30, 30))
        draw.polygon([(bx - 2, h - s * 0.16), (bx + s * 0.1, h - s * 0.26), (bx + s * 0.2 + 2, h - s * 0.16)],
                     fill=(110, 20, 20))
    else:
        raise ValueError(f"unknown place {place!r}; known: {PLACES}")


def background(img: Image.Image, draw: ImageDraw.ImageDraw, rng: random.Random, opts: dict) -> dict:
    """Domain background hook: a random place (or ``opts['place']``); the place is returned as setting."""
    place = opts.get("place") or rng.choice(opts.get("places") or PLACES)
    draw_place(img, draw, rng, place, opts["size"])
    return {"setting": place}

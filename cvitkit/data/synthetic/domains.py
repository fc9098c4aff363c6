"""Visual domains: background, object vocabulary, colours and drawing style of a synthetic image.

A family (the kind of question) draws its content through a domain, so the same question type looks
different across domains (a count in a top-view aerial image vs. on a pathology slide) and the same
domain serves several tasks with different instructions — which is what makes continual training
interfere. Colour names are the answers of colour questions, kind names those of object questions.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from cvitkit.data.synthetic import objects, places
from cvitkit.data.synthetic.render import RGB, Box, Obj, canvas, grid_boxes, line_width, speckle, vertical_gradient

Drawer = Callable[[ImageDraw.ImageDraw, str, Box, RGB, int, random.Random], None]
Background = Callable[[Image.Image, ImageDraw.ImageDraw, random.Random, dict], dict]


@dataclass(frozen=True)
class Domain:
    """A visual style. ``region`` (fractions of the side) and ``grid`` decide where objects go."""

    name: str
    description: str
    kinds: tuple[str, ...]
    colours: dict[str, RGB]
    background: Background
    drawer: Drawer
    region: tuple[float, float, float, float] = (0.04, 0.04, 0.96, 0.96)
    grid: tuple[int, int] = (3, 3)
    plurals: dict[str, str] = field(default_factory=dict)

    def plural(self, kind: str) -> str:
        if kind in self.plurals:
            return self.plurals[kind]
        return kind + ("es" if kind.endswith(("s", "x", "ch", "sh")) else "s")

    def pixel_region(self, size: int) -> Box:
        x0, y0, x1, y1 = self.region
        return int(x0 * size), int(y0 * size), int(x1 * size), int(y1 * size)

    @property
    def max_objects(self) -> int:
        return self.grid[0] * self.grid[1]

    def scene(self, rng: random.Random, size: int, specs: list[tuple[str, str]], scale=(0.62, 0.85),
              jitter: bool = True, region=None, grid=None, **bg_opts) -> tuple[Image.Image, list[Obj], dict]:
        """Draw the background and one object per ``(kind, colour)``; returns image, objects, info.

        ``region`` (fractions of the side) and ``grid`` override the domain's object layout.
        """
        img, draw = canvas(size)
        info = self.background(img, draw, rng, {"size": size, **bg_opts})
        px = self.pixel_region(size) if region is None else tuple(int(v * size) for v in region)
        boxes = grid_boxes(rng, len(specs), px, *(grid or self.grid), scale=scale, jitter=jitter)
        objs = []
        for (kind, colour), box in zip(specs, boxes):
            obj = Obj(kind, colour, box)
            self.draw_object(draw, obj, size, rng)
            objs.append(obj)
        return img, objs, info

    def draw_object(self, draw: ImageDraw.ImageDraw, obj: Obj, size: int, rng: random.Random) -> None:
        self.drawer(draw, obj.kind, obj.box, self.colours[obj.colour], line_width(size), rng)


# ---- backgrounds ---------------------------------------------------------------------------------

def _natural_bg(img, draw, rng, opts):
    s = opts["size"]
    horizon = int(s * rng.uniform(0.35, 0.5))
    vertical_gradient(img, (110, 165, 230), (185, 220, 245), 0, horizon)
    vertical_gradient(img, (95, 170, 80), (60, 125, 50), horizon, s)
    speckle(img, rng, [(50, 110, 45), (120, 185, 95)], s // 2)
    return {"setting": "outdoors"}


def _remote_bg(img, draw, rng, opts):
    s = opts["size"]
    draw.rectangle((0, 0, s, s), fill=(118, 138, 88))
    for _ in range(4):  # fields
        x, y = rng.randrange(s), rng.randrange(s)
        w, h = rng.randint(s // 5, s // 2), rng.randint(s // 5, s // 2)
        draw.rectangle((x, y, x + w, y + h), fill=rng.choice([(150, 132, 92), (98, 128, 70), (135, 150, 100)]))
    speckle(img, rng, [(80, 105, 60), (160, 150, 110)], s // 2)
    y = rng.randint(s // 5, 4 * s // 5)  # a road through the tile
    draw.line((0, y, s, y + rng.randint(-s // 4, s // 4)), fill=(112, 112, 112), width=max(2, s // 16))
    return {"setting": "aerial"}


def _medical_bg(img, draw, rng, opts):
    s = opts["size"]
    draw.rectangle((0, 0, s, s), fill=(12, 12, 12))
    m = int(s * rng.uniform(0.02, 0.06))
    draw.ellipse((m, m, s - 1 - m, s - 1 - m), fill=(105, 105, 105))
    speckle(img, rng, [(88, 88, 88), (122, 122, 122)], s)
    return {"setting": "slide"}


def _driving_bg(img, draw, rng, opts):
    s = opts["size"]
    horizon = int(s * 0.34)
    vertical_gradient(img, (120, 170, 225), (200, 225, 240), 0, horizon)
    draw.rectangle((0, horizon, s, s), fill=(80, 140, 70))
    draw.polygon([(s * 0.42, horizon), (s * 0.58, horizon), (s, s * 0.8), (s, s), (0, s), (0, s * 0.8)],
                 fill=(100, 100, 104))
    for t in (0.45, 0.65, 0.85):  # centre lane dashes
        y = horizon + (s - horizon) * t
        draw.line((s / 2, y, s / 2, y + s * 0.06), fill=(205, 205, 205), width=max(1, s // 48))
    return {"setting": "road"}


def _white_bg(img, draw, rng, opts):
    s = opts["size"]
    draw.rectangle((0, 0, s, s), fill=(255, 255, 255))
    draw.rectangle((0, 0, s - 1, s - 1), outline=(170, 170, 170))
    return {"setting": "diagram"}


def _chart_bg(img, draw, rng, opts):
    s = opts["size"]
    draw.rectangle((0, 0, s, s), fill=(255, 255, 255))
    lw = line_width(s)
    draw.line((s * 0.1, s * 0.05, s * 0.1, s * 0.9), fill=(0, 0, 0), width=lw)
    draw.line((s * 0.1, s * 0.9, s * 0.97, s * 0.9), fill=(0, 0, 0), width=lw)
    return {"setting": "chart"}


def _document_bg(img, draw, rng, opts):
    s = opts["size"]
    draw.rectangle((0, 0, s, s), fill=(250, 247, 238))
    if opts.get("lines", True):
        for y in range(int(s * 0.1), int(s * 0.95), max(3, s // 10)):
            draw.line((s * 0.08, y, s * rng.uniform(0.5, 0.92), y), fill=(192, 192, 192), width=max(1, s // 48))
    return {"setting": "page"}


def _gui_bg(img, draw, rng, opts):
    s = opts["size"]
    draw.rectangle((0, 0, s, s), fill=rng.choice([(242, 242, 247), (232, 238, 246), (245, 240, 232)]))
    draw.rectangle((0, 0, s, int(s * 0.08)), fill=(50, 50, 62))
    return {"setting": "screen"}


def _toy_bg(img, draw, rng, opts):
    top = rng.choice([(250, 228, 235), (226, 240, 250), (236, 250, 228), (246, 240, 222)])
    vertical_gradient(img, top, tuple(max(0, c - 30) for c in top))
    return {"setting": "studio"}


def _render_bg(img, draw, rng, opts):
    vertical_gradient(img, (168, 168, 170), (118, 118, 120))
    return {"setting": "render"}


FLAT = {"red": (220, 40, 40), "blue": (40, 80, 230), "green": (30, 160, 60), "yellow": (245, 205, 20),
        "purple": (140, 60, 190), "orange": (245, 135, 20), "white": (250, 250, 250), "black": (20, 20, 20),
        "cyan": (30, 200, 220), "pink": (240, 120, 180), "gray": (150, 150, 150)}


def _pick(*names: str) -> dict[str, RGB]:
    return {n: FLAT[n] for n in names}


DOMAINS: dict[str, Domain] = {d.name: d for d in [
    Domain("natural", "outdoor photo: sky, grass and everyday objects", (
        "ball", "box", "house", "tree", "car", "fish", "flower", "kite"),
        _pick("red", "blue", "yellow", "purple", "orange", "white"), _natural_bg, objects.natural,
        plurals={"fish": "fish"}),
    Domain("remote", "remote sensing: top view of land with buildings, vehicles and facilities",
           ("building", "car", "tank", "pool", "court"), _pick("red", "blue", "white", "yellow"), _remote_bg,
           objects.remote),
    Domain("medical", "grayscale pathology slide: tissue with cells and findings", ("cell", "nodule", "cyst", "lesion"),
           {"bright": (235, 235, 235), "dark": (35, 35, 35)}, _medical_bg, objects.medical,
           region=(0.16, 0.16, 0.84, 0.84)),
    Domain("driving", "ego-vehicle camera: road, lanes and road users", (
        "car", "truck", "bus", "sign", "cone", "person"), _pick("red", "blue", "yellow", "white"), _driving_bg,
        objects.driving, region=(0.02, 0.4, 0.98, 0.98), grid=(2, 3), plurals={"person": "people", "bus": "buses"}),
    Domain("diagram", "science diagram: outlined shapes on white", (
        "circle", "square", "triangle", "star", "hexagon", "diamond"), _pick("red", "blue", "green", "black"),
        _white_bg, objects.outlined),
    Domain("chart", "plots: axes, lines, bars and candlesticks", ("circle", "square", "triangle", "diamond"),
           _pick("red", "blue", "green", "orange"), _chart_bg, objects.outlined, region=(0.14, 0.06, 0.96, 0.86)),
    Domain("document", "printed page: text lines, titles and stamps", ("circle", "square", "star", "triangle"),
           _pick("red", "blue", "black"), _document_bg, objects.outlined),
    Domain("gui", "phone screen: status bar, buttons and app icons", (
        "circle", "square", "star", "heart", "triangle"), _pick("red", "blue", "green", "orange"), _gui_bg,
        objects.icon, region=(0.04, 0.12, 0.96, 0.96)),
    Domain("places", "scene photo: beaches, forests, cities, mountains", ("ball", "box", "car", "kite"),
           _pick("red", "blue", "yellow", "purple"), places.background, objects.natural,
           region=(0.05, 0.62, 0.95, 0.98), grid=(1, 3), plurals={"fish": "fish"}),
    Domain("render", "3-D render (CLEVR-like): shaded solids on a gray floor", ("cube", "sphere", "cylinder", "cone"),
           _pick("red", "blue", "green", "yellow", "purple", "cyan"), _render_bg, objects.solid,
           region=(0.04, 0.2, 0.96, 0.96)),
    Domain("toy", "toy studio (pretraining only): flat shapes on pastel backdrops", (
        "circle", "square", "triangle", "star", "heart", "diamond"),
        _pick("red", "green", "blue", "yellow", "purple", "orange"), _toy_bg, objects.flat),
]}

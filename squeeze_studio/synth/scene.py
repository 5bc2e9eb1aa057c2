"""Render a subject into a scene: the exact image and the subject's mask.

A scene is fully described by ``Attributes`` (background, position, scale, orientation, count,
style). Rendering draws every shape at ``SUPERSAMPLE`` times the output resolution and averages
blocks down, so edges are anti-aliased and the result is bit-identical for the same inputs.

Layout: each copy of the subject fills a square box whose side is ``SCALES[scale] * size`` (the
subject's silhouette is centred in the box with its longest side equal to the box side). Copies form a
group (one box; two side by side; three as a triangle) whose centre is the named grid cell's centre,
clamped so the group stays inside the image. The detectors in ``metrics`` read attributes back with
the same layout functions.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from .palette import COLOUR_NAMES, distance, pastel, rgb, shade
from .subjects import Subject, erode, rasterise, subject_shapes

# Grid cells: name -> (x, y) as fractions of the image.
POSITIONS: dict[str, tuple[float, float]] = {
    "top left": (1 / 6, 1 / 6),
    "top": (1 / 2, 1 / 6),
    "top right": (5 / 6, 1 / 6),
    "left": (1 / 6, 1 / 2),
    "center": (1 / 2, 1 / 2),
    "right": (5 / 6, 1 / 2),
    "bottom left": (1 / 6, 5 / 6),
    "bottom": (1 / 2, 5 / 6),
    "bottom right": (5 / 6, 5 / 6),
}
SCALES: dict[str, float] = {"small": 0.27, "medium": 0.42, "large": 0.58}  # box side / image side
# "rotated left" is a quarter turn counter-clockwise; "upside down" is a half turn (not a flip);
# "mirrored" is a left-right flip.
ORIENTATIONS = ("upright", "rotated left", "rotated right", "upside down", "mirrored")
COUNTS = (1, 2, 3)
BG_PATTERNS = ("plain", "striped", "checkered")
STYLES = ("normal", "outlined", "pastel")

SUPERSAMPLE = 4
MARGIN = 0.03  # gap kept between the group and the image border, as a fraction of the image
GAP = 0.3  # gap between copies, as a fraction of the box side
OUTLINE = 0.07  # outline thickness, as a fraction of the box side
MIN_CONTRAST = 100.0  # RGB distance kept between the subject's silhouette and any background colour


@dataclass(frozen=True)
class Attributes:
    """Everything that places a subject in a scene (values from the tuples above)."""

    background: str = "white"
    bg_pattern: str = "plain"
    position: str = "center"
    scale: str = "medium"
    orientation: str = "upright"
    count: int = 1
    style: str = "normal"

    def __post_init__(self) -> None:
        checks = (
            ("background", self.background, COLOUR_NAMES),
            ("bg_pattern", self.bg_pattern, BG_PATTERNS),
            ("position", self.position, tuple(POSITIONS)),
            ("scale", self.scale, tuple(SCALES)),
            ("orientation", self.orientation, ORIENTATIONS),
            ("count", self.count, COUNTS),
            ("style", self.style, STYLES),
        )
        for name, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Attributes:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


# ---------------------------------------------------------------------------------------------------
# Layout


def group_extent(scale: str, count: int, size: int) -> tuple[float, float]:
    """(width, height) in pixels of the group of ``count`` copies at ``scale``."""
    b = SCALES[scale] * size
    g = GAP * b
    if count == 1:
        return b, b
    if count == 2:
        return 2 * b + g, b
    return 2 * b + g, 2 * b + g


def group_centre(position: str, scale: str, count: int, size: int) -> tuple[float, float]:
    """Centre (x, y) in pixels of the group placed at grid cell ``position``."""
    w, h = group_extent(scale, count, size)
    fx, fy = POSITIONS[position]

    def clamp(v: float, extent: float) -> float:
        lo, hi = extent / 2 + MARGIN * size, size - extent / 2 - MARGIN * size
        return size / 2 if lo > hi else min(max(v, lo), hi)

    return clamp(fx * size, w), clamp(fy * size, h)


def copy_boxes(attrs: Attributes, size: int) -> list[tuple[float, float, float]]:
    """One (x0, y0, side) box in pixels per copy of the subject."""
    b = SCALES[attrs.scale] * size
    g = GAP * b
    cx, cy = group_centre(attrs.position, attrs.scale, attrs.count, size)
    if attrs.count == 1:
        return [(cx - b / 2, cy - b / 2, b)]
    if attrs.count == 2:
        return [(cx - b - g / 2, cy - b / 2, b), (cx + g / 2, cy - b / 2, b)]
    return [
        (cx - b / 2, cy - b - g / 2, b),
        (cx - b - g / 2, cy + g / 2, b),
        (cx + g / 2, cy + g / 2, b),
    ]


def orient(point: tuple[float, float], orientation: str) -> tuple[float, float]:
    """Map a unit-box point (x right, y down) to where ``orientation`` puts it."""
    x, y = point
    if orientation == "upright":
        return x, y
    if orientation == "rotated left":  # counter-clockwise on screen: the top goes to the left
        return y, 1 - x
    if orientation == "rotated right":
        return 1 - y, x
    if orientation == "upside down":
        return 1 - x, 1 - y
    if orientation == "mirrored":
        return 1 - x, y
    raise ValueError(f"unknown orientation {orientation!r}")


def _box_transform(x0: float, y0: float, side: float, orientation: str) -> Callable:
    def transform(p: tuple[float, float]) -> tuple[float, float]:
        u, v = orient(p, orientation)
        return x0 + u * side, y0 + v * side

    return transform


# ---------------------------------------------------------------------------------------------------
# Colours


def subject_colours(subject: Subject, style: str = "normal") -> dict[str, np.ndarray]:
    """RGB of each painted layer (part, body, pattern, mark, outline) in ``style``."""
    colours = {
        "part": rgb(subject.part_colour),
        "body": rgb(subject.body_colour),
        "pattern": rgb(subject.part_colour),
        "mark": rgb(subject.mark_colour),
    }
    if style == "pastel":
        colours = {k: pastel(v) for k, v in colours.items()}
    dark = "black" in (subject.body_colour, subject.part_colour)
    colours["outline"] = rgb("white") if dark else rgb("black")
    return colours


def background_colours(name: str, pattern: str) -> list[np.ndarray]:
    """The one or two colours a background shows."""
    return [rgb(name)] if pattern == "plain" else [rgb(name), shade(name)]


def compatible_backgrounds(subject: Subject, style: str = "normal", pattern: str = "plain") -> list[str]:
    """Background colour names that keep the subject's outline clearly visible in ``style``."""
    colours = subject_colours(subject, style)
    edge = [colours["part"], colours["body"]] + ([colours["outline"]] if style == "outlined" else [])
    out = []
    for name in COLOUR_NAMES:
        if name in (subject.body_colour, subject.part_colour, subject.mark_colour):
            continue
        if all(distance(b, c) >= MIN_CONTRAST for b in background_colours(name, pattern) for c in edge):
            out.append(name)
    return out


def _background(name: str, pattern: str, height: int, width: int, band: float) -> np.ndarray:
    """(height, width, 3) float background; stripes run horizontally; bands are ``band`` output px wide."""
    base, alt = rgb(name), shade(name)
    out = np.empty((height, width, 3))
    out[:] = base
    if pattern == "plain":
        return out
    ys = (np.arange(height) + 0.5) / SUPERSAMPLE // band
    xs = (np.arange(width) + 0.5) / SUPERSAMPLE // band
    odd = (ys[:, None] % 2 == 1) if pattern == "striped" else ((ys[:, None] + xs[None, :]) % 2 == 1)
    out[np.broadcast_to(odd, (height, width))] = alt
    return out


# ---------------------------------------------------------------------------------------------------
# Painting


def _paint(
    subject: Subject,
    boxes: list[tuple[float, float, float]],
    orientation: str,
    style: str,
    background: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Paint copies into a supersampled float background (H*S, W*S, 3); boxes are in output pixels.

    Returns the output-resolution image (H, W, 3) uint8 and subject mask (H, W) bool (coverage >= 1/2).
    """
    s = SUPERSAMPLE
    hh, ww = background.shape[:2]
    transforms = [_box_transform(x0 * s, y0 * s, side * s, orientation) for x0, y0, side in boxes]
    layers = rasterise(subject_shapes(subject), transforms, ww, hh)
    silhouette = layers["part"] | layers["body"]
    paint = {
        "part": layers["part"],
        "body": layers["body"],
        "pattern": layers["pattern"] & layers["body"],
        "mark": layers["mark"] & layers["body"],
    }
    if style == "outlined":
        thickness = max(1, int(round(OUTLINE * boxes[0][2] * s)))
        paint["outline"] = silhouette & ~erode(silhouette, thickness)
    colours = subject_colours(subject, style)
    image = background.copy()
    for layer, where in paint.items():
        image[where] = colours[layer]
    h, w = hh // s, ww // s
    image = image.reshape(h, s, w, s, 3).mean(axis=(1, 3))
    coverage = silhouette.reshape(h, s, w, s).mean(axis=(1, 3))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), coverage >= 0.5


def render_scene(subject: Subject, attrs: Attributes, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The scene image, (size, size, 3) uint8, and the subject's mask, (size, size) bool."""
    n = size * SUPERSAMPLE
    background = _background(attrs.background, attrs.bg_pattern, n, n, band=size / 8)
    return _paint(subject, copy_boxes(attrs, size), attrs.orientation, attrs.style, background)


def render_sprite(
    subject: Subject,
    px: int,
    orientation: str = "upright",
    style: str = "normal",
    background: tuple[int, int, int] | np.ndarray = (255, 255, 255),
) -> tuple[np.ndarray, np.ndarray]:
    """The subject alone filling a (px, px) box on a plain background: image (px, px, 3), mask (px, px)."""
    n = px * SUPERSAMPLE
    canvas = np.empty((n, n, 3))
    canvas[:] = np.asarray(background, dtype=np.float64)
    return _paint(subject, [(0.0, 0.0, float(px))], orientation, style, canvas)

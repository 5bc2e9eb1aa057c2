"""Named colours shared by subjects, backgrounds, instructions and the detectors.

Every colour that can appear in an instruction is a name here. Patterned backgrounds pair a named
colour with its *shade* (a lighter tint of dark colours, a darker tone of light ones), and the
detectors classify pixels against both, so the table is kept well separated (grey is left out: it sits
too close to the shades of white, black and brown).
"""
from __future__ import annotations

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 40, 40),
    "orange": (245, 135, 20),
    "yellow": (245, 212, 40),
    "green": (46, 160, 60),
    "teal": (20, 150, 150),
    "blue": (40, 80, 215),
    "purple": (130, 60, 180),
    "pink": (240, 125, 190),
    "white": (245, 245, 240),
    "black": (28, 28, 32),
    "brown": (125, 75, 35),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)


def rgb(name: str) -> np.ndarray:
    """The colour ``name`` as a float array of shape (3,)."""
    return np.asarray(COLOURS[name], dtype=np.float64)


def luminance(colour: np.ndarray) -> float:
    return float(0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2])


def shade(name: str) -> np.ndarray:
    """The second colour of a patterned background of colour ``name``, shape (3,)."""
    c = rgb(name)
    return c * 0.72 + 255 * 0.28 if luminance(c) < 150 else c * 0.78


def pastel(colour: np.ndarray) -> np.ndarray:
    """The "pastel" style of a subject colour: half-way to white."""
    return np.asarray(colour, dtype=np.float64) * 0.5 + 255 * 0.5


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean RGB distance (0..441)."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


def classification_table() -> tuple[np.ndarray, list[str], list[bool]]:
    """Every colour a background can show: (K, 3) colours, their names, and whether each is a shade."""
    colours, names, is_shade = [], [], []
    for name in COLOUR_NAMES:
        colours += [rgb(name), shade(name)]
        names += [name, name]
        is_shade += [False, True]
    return np.stack(colours), names, is_shade

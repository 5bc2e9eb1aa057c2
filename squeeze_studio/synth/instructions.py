"""Natural-language instructions for a target scene, in varied phrasing.

An instruction names only the attributes in ``mentioned``; the dataset decides which those are and
what an unnamed attribute means (its default, or the reference's value in the copy variant).
"""
from __future__ import annotations

import re

import numpy as np

from .scene import Attributes

POSITION_PHRASES = {
    "top left": ("at the top left", "in the top left corner", "in the upper left corner"),
    "top": ("at the top", "at the top center", "in the middle of the top edge"),
    "top right": ("at the top right", "in the top right corner", "in the upper right corner"),
    "left": ("on the left", "at the left side", "in the middle of the left side"),
    "center": ("in the center", "in the middle", "right in the center"),
    "right": ("on the right", "at the right side", "in the middle of the right side"),
    "bottom left": ("at the bottom left", "in the bottom left corner", "in the lower left corner"),
    "bottom": ("at the bottom", "at the bottom center", "in the middle of the bottom edge"),
    "bottom right": ("at the bottom right", "in the bottom right corner", "in the lower right corner"),
}
BACKGROUND_PHRASES = {
    "plain": ("on a {c} background", "against a {c} backdrop", "on plain {c}", "with a {c} background"),
    "striped": ("on a striped {c} background", "on a {c} striped background", "against {c} stripes"),
    "checkered": ("on a checkered {c} background", "on a {c} checkerboard", "on {c} checks"),
}
SCALE_PHRASES = {
    "small": ("small", "tiny", "at a small size"),
    "medium": ("medium-sized", "at medium size"),
    "large": ("large", "big", "at a large size"),
}
ORIENTATION_PHRASES = {
    "upright": ("upright", "the right way up"),
    "rotated left": ("rotated 90 degrees to the left", "turned a quarter turn anticlockwise", "rotated left"),
    "rotated right": ("rotated 90 degrees to the right", "turned a quarter turn clockwise", "rotated right"),
    "upside down": ("upside down", "turned upside down", "rotated 180 degrees"),
    "mirrored": ("mirrored", "flipped horizontally", "as a mirror image"),
}
STYLE_PHRASES = {
    "normal": ("in its normal colours",),
    "outlined": ("with an outline", "outlined"),
    "pastel": ("in pastel colours", "in soft pastel tones"),
}
SUBJECT_NOUNS = ("the subject", "the same subject", "the object from the reference", "the character")
SUBJECT_OBJECTS = ("it", "the subject", "the object")
COUNT_NOUNS = {
    1: ("a single copy of the subject", "only one copy of the subject"),
    2: ("two copies of the subject", "a pair of copies of the subject"),
    3: ("three copies of the subject", "a group of three copies of the subject"),
}
COUNT_OBJECTS = {1: ("just one copy of it", "a single copy of it"), 2: ("two of them", "two copies of it"),
                 3: ("three of them", "three copies of it")}
VERBS = ("put", "place", "show", "draw", "move")


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def compose_instruction(target: Attributes, mentioned: set[str], rng: np.random.Generator) -> str:
    """One instruction naming exactly the attributes in ``mentioned`` (keys of ``Attributes``).

    ``bg_pattern`` is named together with ``background``.
    """
    place = _pick(rng, POSITION_PHRASES[target.position]) if "position" in mentioned else ""
    backdrop = ""
    if "background" in mentioned:
        backdrop = _pick(rng, BACKGROUND_PHRASES[target.bg_pattern]).format(c=target.background)
    extras = []
    if "scale" in mentioned:
        extras.append(_pick(rng, SCALE_PHRASES[target.scale]))
    if "orientation" in mentioned:
        extras.append(_pick(rng, ORIENTATION_PHRASES[target.orientation]))
    if "style" in mentioned:
        extras.append(_pick(rng, STYLE_PHRASES[target.style]))
    extras = [extras[i] for i in rng.permutation(len(extras))]
    with_count = "count" in mentioned

    form = int(rng.integers(3))
    if form == 0:  # "the subject at the top left on a blue background, upside down"
        noun = _pick(rng, COUNT_NOUNS[target.count]) if with_count else _pick(rng, SUBJECT_NOUNS)
        words = [noun, place, backdrop]
        text = " ".join(w for w in words if w) + "".join(", " + e for e in extras)
    elif form == 1:  # "put it in the bottom right corner, small, on a striped green background"
        obj = _pick(rng, COUNT_OBJECTS[target.count]) if with_count else _pick(rng, SUBJECT_OBJECTS)
        verb = _pick(rng, VERBS if place else VERBS[:-1])  # nothing to "move" without a place
        if verb == "move":  # "move it to the top left", not "move it at the top left"
            place = "to " + place.removeprefix("right ").split(" ", 1)[1]
        head = f"{verb} {obj}" + (f" {place}" if place else "")
        if not place and not extras:  # "show it against white stripes"
            text = f"{head} {backdrop}".strip()
        else:
            text = ", ".join([head, *extras, backdrop] if backdrop else [head, *extras])
    else:  # "on a checkered red background, the subject in the middle, mirrored"
        noun = _pick(rng, COUNT_NOUNS[target.count]) if with_count else _pick(rng, SUBJECT_NOUNS)
        body = noun + (f" {place}" if place else "")
        text = ", ".join([backdrop, body, *extras] if backdrop else [body, *extras])
    text = re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", text)  # "an orange background"
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.5:
        text += "."
    return text

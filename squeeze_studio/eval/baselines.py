"""Outputs made without a model, scored by the same code as the model's.

- ``copy_reference``: reference 1 returned unchanged. Perfect identity, no instruction following: a
  model that does not beat it on adherence (and does not stay below it on copy-paste) is copying.
- ``target``: the exact target (SynthSubjects) or ground-truth image: the ceiling the detectors and
  encoders allow, which shows how far from 1.0 a perfect output already scores.
"""
from __future__ import annotations

from collections.abc import Callable

from PIL import Image


def copy_reference(references: list[Image.Image], target: Image.Image) -> Image.Image:
    return references[0]


def exact_target(references: list[Image.Image], target: Image.Image) -> Image.Image:
    return target


BASELINES: dict[str, Callable[[list[Image.Image], Image.Image], Image.Image]] = {
    "copy_reference": copy_reference,
    "target": exact_target,
}

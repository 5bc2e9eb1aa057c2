"""SynthSubjects: procedural subjects, exact target scenes, instructions, and metrics.

The benchmark where the truth is known (docs/DESIGN.md 4): every target is rendered exactly, so
identity fidelity, per-attribute adherence and copy-paste rate are measured without learned models.
Pure numpy + Pillow.
"""
from .dataset import (
    HELD_OUT,
    SPLITS,
    Example,
    is_held_out,
    load_image,
    load_jsonl,
    load_mask,
    make_dataset,
    make_example,
    subject_split,
)
from .scene import ORIENTATIONS, POSITIONS, SCALES, STYLES, Attributes, render_scene, render_sprite
from .subjects import SUBJECT_SPACE, Subject, make_subject

__all__ = [
    "HELD_OUT",
    "ORIENTATIONS",
    "POSITIONS",
    "SCALES",
    "SPLITS",
    "STYLES",
    "SUBJECT_SPACE",
    "Attributes",
    "Example",
    "Subject",
    "is_held_out",
    "load_image",
    "load_jsonl",
    "load_mask",
    "make_dataset",
    "make_example",
    "make_subject",
    "render_scene",
    "render_sprite",
    "subject_split",
]

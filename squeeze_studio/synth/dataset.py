"""SynthSubjects examples, splits, and the JSONL layout they are written in.

An example is 1-3 reference images of one subject in varied scenes, an instruction, the exact target
image with its subject mask, and metadata. Three variants:

- ``standard``: the instruction always names position and background; scale, orientation, count and
  style are named when they differ from their defaults (medium, upright, 1, normal) and sometimes when
  they do not. An unnamed attribute takes its default.
- ``identity``: one reference; the target is that reference moved and/or re-backgrounded with the same
  orientation and scale (a curriculum that teaches the model to use the reference tokens).
- ``copy``: the copy-rewarding ablation: the instruction names only the background (and style); the
  target keeps the first reference's position, orientation and scale.

Splits are disjoint by subject seed (a hash of the seed picks the split: 80 / 10 / 10). The (position,
orientation) pairs in ``HELD_OUT`` never appear in train or val, neither in targets nor references; the
test split draws a share of its standard targets from them. Everything is a pure function of
(seed, split, index), so any example can be regenerated alone.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from .instructions import compose_instruction
from .scene import (
    BG_PATTERNS,
    ORIENTATIONS,
    POSITIONS,
    SCALES,
    STYLES,
    Attributes,
    compatible_backgrounds,
    render_scene,
)
from .subjects import SUBJECT_SPACE, Subject, make_subject

SPLITS = ("train", "val", "test")
VARIANTS = ("standard", "identity", "copy")
# (position, orientation) pairs kept out of train and val: 7 of the 45 pairs, every position and
# orientation still seen in training on its own.
HELD_OUT = frozenset(
    {
        ("top left", "upside down"),
        ("top right", "mirrored"),
        ("center", "rotated left"),
        ("bottom left", "rotated right"),
        ("bottom right", "upside down"),
        ("left", "mirrored"),
        ("bottom", "rotated left"),
    }
)
DEFAULTS = Attributes()  # what an attribute the instruction leaves out means (standard variant)


def _mix64(x: int) -> int:
    """splitmix64 finaliser: a fixed, well-spread integer hash (Python's hash() is salted)."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def subject_split(subject_seed: int) -> str:
    """The split a subject belongs to: "train" (80 %), "val" (10 %) or "test" (10 %)."""
    bucket = _mix64(int(subject_seed)) % 20
    return "train" if bucket < 16 else "val" if bucket < 18 else "test"


def is_held_out(attrs: Attributes) -> bool:
    return (attrs.position, attrs.orientation) in HELD_OUT


@dataclass
class Example:
    """One example. Images are (size, size, 3) uint8; the mask is (size, size) bool."""

    index: int
    split: str
    variant: str
    subject: Subject
    references: list[np.ndarray]
    reference_attrs: list[Attributes]
    instruction: str
    target: np.ndarray
    target_mask: np.ndarray
    target_attrs: Attributes
    instructed: tuple[str, ...]
    held_out: bool

    def meta(self) -> dict:
        return {
            "subject_seed": self.subject.seed,
            "subject": self.subject.to_dict(),
            "split": self.split,
            "variant": self.variant,
            "index": self.index,
            "target": self.target_attrs.to_dict(),
            "references": [a.to_dict() for a in self.reference_attrs],
            "instructed": list(self.instructed),
            "held_out_combo": self.held_out,
        }


# ---------------------------------------------------------------------------------------------------
# Sampling


def _choice(rng: np.random.Generator, options, p=None):
    return options[int(rng.choice(len(options), p=p))]


def _sample_subject(rng: np.random.Generator, split: str) -> Subject:
    while True:
        seed = int(rng.integers(SUBJECT_SPACE))
        if subject_split(seed) == split:
            return make_subject(seed)


def _sample_background(rng: np.random.Generator, subject: Subject, style: str, avoid: str = "") -> tuple:
    pattern = _choice(rng, BG_PATTERNS, p=[0.6, 0.2, 0.2])
    names = [n for n in compatible_backgrounds(subject, style, pattern) if n != avoid]
    if not names:
        pattern = "plain"
        names = [n for n in compatible_backgrounds(subject, style, pattern) if n != avoid]
    return _choice(rng, names), pattern


def _sample_seen_pose(rng: np.random.Generator) -> tuple[str, str]:
    """A (position, orientation) pair that is not held out."""
    while True:
        pose = (_choice(rng, tuple(POSITIONS)), _choice(rng, ORIENTATIONS))
        if pose not in HELD_OUT:
            return pose


def _sample_reference(rng: np.random.Generator, subject: Subject) -> Attributes:
    position, orientation = _sample_seen_pose(rng)
    background, pattern = _sample_background(rng, subject, "normal")
    scale = _choice(rng, ("medium", "large"))
    return Attributes(background, pattern, position, scale, orientation)


def _sample_target(
    rng: np.random.Generator, subject: Subject, held_out: bool, style_prob: float
) -> Attributes:
    if held_out:
        position, orientation = _choice(rng, sorted(HELD_OUT))
    else:
        position, orientation = _sample_seen_pose(rng)
    count = _choice(rng, (1, 2, 3), p=[0.8, 0.1, 0.1])
    # Copies are always small: a group of medium or large copies would not fit in a grid cell.
    scale = "small" if count > 1 else _choice(rng, tuple(SCALES), p=[0.3, 0.35, 0.35])
    style = _choice(rng, STYLES[1:]) if rng.random() < style_prob else "normal"
    background, pattern = _sample_background(rng, subject, style)
    return Attributes(background, pattern, position, scale, orientation, count, style)


def _mentioned(rng: np.random.Generator, target: Attributes) -> set[str]:
    """Standard variant: position and background always; other attributes when not at their default
    (and now and then when they are, so the model also sees "upright", "medium-sized", "just one")."""
    keys = {"position", "background"}
    for key, p_default in (("scale", 0.2), ("orientation", 0.2), ("count", 0.1), ("style", 0.0)):
        if getattr(target, key) != getattr(DEFAULTS, key) or rng.random() < p_default:
            keys.add(key)
    return keys


def _differs(a: Attributes, b: Attributes) -> bool:
    return (a.position, a.orientation, a.background) != (b.position, b.orientation, b.background)


def make_example(
    seed: int,
    split: str,
    index: int,
    size: int = 64,
    *,
    identity_prob: float = 0.0,
    copy_variant: bool = False,
    style_prob: float = 0.1,
    held_out_prob: float = 0.3,
    max_refs: int = 3,
) -> Example:
    """Example ``index`` of the dataset (``seed``, ``split``): deterministic, independent of the others.

    ``identity_prob``: share of identity pairs; ``copy_variant``: every example is a copy-rewarding one;
    ``held_out_prob``: share of test-split standard targets drawn from ``HELD_OUT``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    rng = np.random.default_rng([int(seed), SPLITS.index(split), int(index)])
    subject = _sample_subject(rng, split)
    identity = rng.random() < identity_prob
    variant = "copy" if copy_variant else "identity" if identity else "standard"
    n_refs = 1 if variant == "identity" else int(rng.integers(1, max_refs + 1))
    refs = [_sample_reference(rng, subject) for _ in range(n_refs)]
    held_out = variant == "standard" and split == "test" and rng.random() < held_out_prob

    for _ in range(100):  # resample until the target is not a plain copy of the first reference
        if variant == "standard":
            target = _sample_target(rng, subject, held_out, style_prob)
            mentioned = _mentioned(rng, target)
        elif variant == "identity":
            position, _ = _sample_seen_pose(rng)
            while (position, refs[0].orientation) in HELD_OUT:
                position, _ = _sample_seen_pose(rng)
            background, pattern = _sample_background(rng, subject, "normal")
            target = replace(refs[0], position=position, background=background, bg_pattern=pattern)
            mentioned = _mentioned(rng, target)
        else:
            style = _choice(rng, STYLES[1:]) if rng.random() < style_prob else "normal"
            background, pattern = _sample_background(rng, subject, style, avoid=refs[0].background)
            target = replace(refs[0], background=background, bg_pattern=pattern, style=style)
            mentioned = {"background"} | ({"style"} if style != "normal" else set())
        if _differs(target, refs[0]):
            break

    image, mask = render_scene(subject, target, size)
    keys = ("position", "background", "scale", "orientation", "count", "style")
    order = tuple(k for k in keys if k in mentioned)
    return Example(
        index=int(index),
        split=split,
        variant=variant,
        subject=subject,
        references=[render_scene(subject, a, size)[0] for a in refs],
        reference_attrs=refs,
        instruction=compose_instruction(target, mentioned, rng),
        target=image,
        target_mask=mask,
        target_attrs=target,
        instructed=order,
        held_out=bool(held_out),
    )


# ---------------------------------------------------------------------------------------------------
# Files


def _save_png(array: np.ndarray, path: Path) -> None:
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    image = Image.fromarray(array, "L" if array.ndim == 2 else "RGB")
    image.save(path, format="PNG")


def make_dataset(
    out_dir: str | os.PathLike,
    count: int,
    seed: int,
    split: str,
    size: int = 64,
    *,
    identity_prob: float = 0.0,
    copy_variant: bool = False,
    style_prob: float = 0.1,
    held_out_prob: float = 0.3,
    max_refs: int = 3,
    on_progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``count`` examples under ``out_dir`` and return the path of its ``data.jsonl``.

    Layout: ``images/{i:06d}_ref{j}.png``, ``images/{i:06d}_target.png``, ``images/{i:06d}_mask.png``
    and one JSON line per example: ``{"instruction", "input_images", "output_image", "output_mask",
    "meta"}`` with paths relative to ``out_dir``. ``info.json`` records the parameters.
    ``on_progress(done, count)`` is called after each example. Files of the same name are overwritten;
    ``data.jsonl`` appears only once every example is written.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if size < 16:
        raise ValueError(f"size must be at least 16, got {size}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    (out / "images").mkdir(parents=True, exist_ok=True)
    params = dict(
        identity_prob=identity_prob,
        copy_variant=copy_variant,
        style_prob=style_prob,
        held_out_prob=held_out_prob,
        max_refs=max_refs,
    )
    jsonl = out / "data.jsonl"
    partial = out / "data.jsonl.partial"
    with open(partial, "w", encoding="utf-8") as f:
        for i in range(count):
            ex = make_example(seed, split, i, size, **params)
            refs = []
            for j, ref in enumerate(ex.references):
                refs.append(f"images/{i:06d}_ref{j}.png")
                _save_png(ref, out / refs[-1])
            _save_png(ex.target, out / f"images/{i:06d}_target.png")
            _save_png(ex.target_mask, out / f"images/{i:06d}_mask.png")
            record = {
                "instruction": ex.instruction,
                "input_images": refs,
                "output_image": f"images/{i:06d}_target.png",
                "output_mask": f"images/{i:06d}_mask.png",
                "meta": {**ex.meta(), "seed": int(seed), "size": int(size)},
            }
            f.write(json.dumps(record) + "\n")
            if on_progress is not None:
                on_progress(i + 1, count)
    os.replace(partial, jsonl)
    info = {"generator": "SynthSubjects", "version": 1, "count": count, "seed": seed, "split": split,
            "size": size, **params}
    (out / "info.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return jsonl


def load_jsonl(path: str | os.PathLike, root: str | os.PathLike | None = None) -> list[dict]:
    """Read a dataset in the OmniGen2 JSONL layout (``path`` is the file or a folder with data.jsonl).

    Each record gets ``instruction`` (str), ``input_images`` (list of absolute paths; a single string
    or null is accepted), ``output_image`` (absolute path), ``output_mask`` (absolute path or None) and
    ``meta`` (dict, empty when absent); other keys are kept as they are. Relative paths are resolved
    against ``root``, by default the file's folder.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "data.jsonl"
    base = Path(root) if root is not None else path.parent

    def resolve(p: str) -> str:
        return str(p if os.path.isabs(p) else (base / p))

    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(raw, dict) or "instruction" not in raw or "output_image" not in raw:
                raise ValueError(f"{path}:{lineno}: a record needs 'instruction' and 'output_image'")
            inputs = raw.get("input_images") or []
            if isinstance(inputs, str):
                inputs = [inputs]
            record = dict(raw)
            record["instruction"] = str(raw["instruction"])
            record["input_images"] = [resolve(p) for p in inputs]
            record["output_image"] = resolve(raw["output_image"])
            record["output_mask"] = resolve(raw["output_mask"]) if raw.get("output_mask") else None
            record["meta"] = raw.get("meta") or {}
            records.append(record)
    return records


def load_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as (H, W, 3) uint8."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).copy()


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask file as (H, W) bool (pixels above half intensity)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127

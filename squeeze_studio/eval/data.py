"""The examples an evaluation runs on: a JSONL dataset (``synth.dataset.load_jsonl`` layout), checked
up front so a bad file fails in one line before any model loads.

Images are read when an example is evaluated, not all at once (a DreamBench-sized set at 1024 px would
not fit in memory). SynthSubjects records carry the exact truth in ``meta`` (subject, target and
reference attributes, instructed keys); other datasets get the DreamBench metrics only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..references import load_reference
from ..synth.dataset import load_image, load_jsonl, load_mask
from ..synth.scene import Attributes, render_scene
from ..synth.subjects import Subject, make_subject


@dataclass(frozen=True)
class Truth:
    """What SynthSubjects knows about an example: enough to score any output exactly."""

    subject: Subject
    target: Attributes
    references: tuple[Attributes, ...]
    instructed: tuple[str, ...]
    variant: str = "standard"


@dataclass
class EvalExample:
    """One record of the dataset. ``index`` is its line position (0-based): the seed offset."""

    index: int
    instruction: str
    reference_paths: list[str]
    target_path: str
    mask_path: str | None = None
    truth: Truth | None = None
    meta: dict = field(default_factory=dict)

    def load_references(self) -> list[Image.Image]:
        return [load_reference(p) for p in self.reference_paths]

    def load_target(self) -> np.ndarray:
        """(H, W, 3) uint8."""
        return load_image(self.target_path)

    def load_target_mask(self, target: np.ndarray) -> np.ndarray | None:
        """(H, W) bool subject mask of the target: from ``output_mask``, else re-rendered from the truth."""
        if self.mask_path is not None:
            mask = load_mask(self.mask_path)
            if mask.shape != target.shape[:2]:
                raise ValueError(f"example {self.index}: mask size {mask.shape} differs from target {target.shape[:2]}")
            return mask
        if self.truth is not None and target.shape[0] == target.shape[1]:
            return render_scene(self.truth.subject, self.truth.target, target.shape[0])[1]
        return None


def _subject(meta: dict) -> Subject | None:
    raw = meta.get("subject")
    if isinstance(raw, dict):
        try:
            return Subject(**{**raw, "parts": tuple(raw["parts"])})
        except (TypeError, KeyError):
            pass
    seed = meta.get("subject_seed")
    return make_subject(int(seed)) if isinstance(seed, int) else None


def parse_truth(meta: dict) -> Truth | None:
    """The SynthSubjects truth in a record's ``meta``, or None when it is not all there."""
    subject = _subject(meta)
    target, references = meta.get("target"), meta.get("references")
    if subject is None or not isinstance(target, dict) or not isinstance(references, list):
        return None
    try:
        attrs = Attributes.from_dict(target)
        refs = tuple(Attributes.from_dict(r) for r in references)
    except (TypeError, ValueError):
        return None
    instructed = tuple(meta.get("instructed") or ())
    return Truth(subject, attrs, refs, instructed, str(meta.get("variant", "standard")))


def _jsonl_path(data: str | os.PathLike) -> Path:
    path = Path(data).expanduser()
    if not path.exists():
        raise ValueError(f"data not found: {path}")
    if path.is_dir():
        path = path / "data.jsonl"
        if not path.is_file():
            raise ValueError(f"no data.jsonl in {path.parent}")
    return path


def load_examples(data: str | os.PathLike, limit: int | None = None) -> list[EvalExample]:
    """The first ``limit`` examples (all when None) of the dataset at ``data`` (a folder with
    ``data.jsonl`` or the file itself); ``ValueError`` with one line for a missing folder, a bad line, a
    record without references or a missing image file."""
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be at least 1 (got {limit})")
    path = _jsonl_path(data)
    try:
        records = load_jsonl(path)
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text JSONL file") from None
    if limit is not None:
        records = records[:limit]
    if not records:
        raise ValueError(f"no examples in {path}")
    examples = []
    for i, record in enumerate(records):
        if not record["input_images"]:
            raise ValueError(f"{path}: example {i} has no input_images (references)")
        for p in [*record["input_images"], record["output_image"], record["output_mask"]]:
            if p is not None and not Path(p).is_file():
                raise ValueError(f"{path}: example {i}: image not found: {p}")
        meta = record["meta"] if isinstance(record["meta"], dict) else {}
        examples.append(EvalExample(i, record["instruction"], record["input_images"], record["output_image"],
                                    record["output_mask"], parse_truth(meta), meta))
    return examples

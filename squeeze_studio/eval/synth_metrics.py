"""SynthSubjects scores: one output against its exact target, then aggregated over a set of outputs.

The detectors are ``synth.metrics``'s; this module only decides what is compared with what and how
it is averaged. Conventions: images (H, W, 3) uint8, masks (H, W) bool; an output is resized to its
target's size before it is scored.

- Identity: PSNR on the target's subject mask (placement must be right too), the aligned subject PSNR
  (placement forgiven), and identity retrieval: the output's largest subject copy against a gallery of
  every subject in the evaluated set rendered in the instructed orientation and style.
- Adherence: each attribute read from the output equals the target's (all examples), and the mean over
  the attributes each instruction names (``instructed``, the headline number). Orientation is also
  reported on the examples whose target orientation differs from every reference's.
- Copy-paste: ``metrics.copy_paste_rate`` on position and orientation.

PSNRs are capped at ``PSNR_CAP_DB`` so an exact copy keeps means finite.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..synth import metrics
from ..synth.scene import Attributes
from ..synth.subjects import Subject
from .data import Truth

ATTRIBUTES = ("background", "bg_pattern", "position", "scale", "orientation", "count", "style")
PSNR_CAP_DB = 100.0
CROP_PX = 24


@dataclass
class SynthScore:
    """One output's scores. ``crop`` (px, px, 3) and ``crop_mask`` (px, px) feed identity retrieval."""

    psnr: float
    subject_psnr: float
    aligned_subject_psnr: float
    detected: dict
    correct: dict[str, bool]
    truth: Truth
    crop: np.ndarray = field(repr=False)
    crop_mask: np.ndarray = field(repr=False)

    @property
    def instructed_keys(self) -> list[str]:
        """The attributes the instruction names; naming the background names its pattern too."""
        keys = [k for k in self.truth.instructed if k in self.correct]
        if "background" in keys:
            keys.append("bg_pattern")
        return keys

    @property
    def instructed_adherence(self) -> float:
        keys = self.instructed_keys
        return float(np.mean([self.correct[k] for k in keys])) if keys else float("nan")

    @property
    def orientation_changed(self) -> bool:
        return orientation_changed(self.truth)

    @property
    def copy_paste(self) -> bool | None:
        return metrics.is_copy_paste(self.detected, self.truth.target, self.truth.references)

    def to_record(self) -> dict:
        """The small per-example JSON record."""
        return {
            "psnr": _cap(self.psnr),
            "subject_psnr": _cap(self.subject_psnr),
            "aligned_subject_psnr": _cap(self.aligned_subject_psnr),
            "detected": self.detected,
            "adherence": {k: self.correct[k] for k in self.instructed_keys},
            "orientation_correct": self.correct["orientation"],
            "copy_paste": self.copy_paste,
        }


def orientation_changed(truth: Truth) -> bool:
    """Whether the instruction asks for an orientation no reference shows."""
    return all(r.orientation != truth.target.orientation for r in truth.references)


def _cap(value: float) -> float:
    return min(float(value), PSNR_CAP_DB)


def fit_to(image: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``image`` resized (bilinear) to ``target``'s height and width when they differ."""
    if image.shape[:2] == target.shape[:2]:
        return image
    height, width = target.shape[:2]
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def score_output(output: np.ndarray, target: np.ndarray, target_mask: np.ndarray, truth: Truth) -> SynthScore:
    """Scores of ``output`` (any size) against ``target`` and its subject mask (H, W)."""
    output = fit_to(np.ascontiguousarray(output, dtype=np.uint8), target)
    detected = metrics.read_attributes(output, truth.subject)
    crop, crop_mask = metrics.subject_crop(output, metrics.foreground_mask(output), CROP_PX)
    return SynthScore(
        psnr=metrics.psnr(output, target),
        subject_psnr=metrics.subject_psnr(output, target, target_mask),
        aligned_subject_psnr=metrics.aligned_subject_psnr(output, target, target_mask),
        detected=detected,
        correct=metrics.adherence(detected, truth.target, ATTRIBUTES),
        truth=truth,
        crop=crop,
        crop_mask=crop_mask,
    )


# ---------------------------------------------------------------------------------------------------
# Aggregation


def _mean(values) -> float | None:
    values = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(np.mean(values)) if values else None


def identity_retrieval(scores: Sequence[SynthScore]) -> dict:
    """Top-1 retrieval of each output's subject among the distinct subjects of ``scores``:
    {"top1", "chance" (1 / gallery size), "gallery", "mean_rank", "hits" (per example, in order)}. Each query meets
    a gallery rendered in its own instructed orientation and style, so a wrong pose costs adherence, not identity.
    ``mean_rank``: the true subject's rank as a fraction of the gallery (0 = retrieved first, 1 = last), averaged;
    0.5 at chance. It uses every example, so it separates a weak identity signal from chance on fewer examples
    than top-1 does."""
    subjects: list[Subject] = sorted({s.truth.subject for s in scores}, key=lambda s: s.seed)
    if not scores:
        return {"top1": None, "chance": None, "gallery": 0, "mean_rank": None, "hits": []}
    position = {s.seed: i for i, s in enumerate(subjects)}
    galleries: dict[tuple[str, str], np.ndarray] = {}
    ranks = []
    for s in scores:
        view = (s.truth.target.orientation, s.truth.target.style)
        if view not in galleries:
            galleries[view] = metrics.subject_gallery(subjects, *view, px=CROP_PX)
        rank = metrics.retrieval_ranks(s.crop[None], s.crop_mask[None], galleries[view],
                                       [position[s.truth.subject.seed]])
        ranks.append(int(rank[0]))
    mean_rank = float(np.mean(ranks) / (len(subjects) - 1)) if len(subjects) > 1 else None
    return {"top1": metrics.retrieval_accuracy(np.array(ranks), 1), "chance": 1.0 / len(subjects),
            "gallery": len(subjects), "mean_rank": mean_rank, "hits": [rank == 0 for rank in ranks]}


def reported_attributes(scores: Sequence[SynthScore]) -> tuple[str, ...]:
    """Every attribute, style only when some instruction in the set names it or some target is styled."""
    styled = any("style" in s.truth.instructed or s.truth.target.style != "normal" for s in scores)
    return tuple(k for k in ATTRIBUTES if k != "style" or styled)


def aggregate(scores: Sequence[SynthScore]) -> dict:
    """Means over ``scores`` (one per example, one setting): the JSON block of one setting."""
    changed = [s for s in scores if s.orientation_changed]
    targets: list[Attributes] = [s.truth.target for s in scores]
    copy = metrics.copy_paste_rate([s.detected for s in scores], targets, [s.truth.references for s in scores])
    return {
        "n": len(scores),
        "psnr": _mean(_cap(s.psnr) for s in scores),
        "subject_psnr": _mean(_cap(s.subject_psnr) for s in scores),
        "aligned_subject_psnr": _mean(_cap(s.aligned_subject_psnr) for s in scores),
        "identity_retrieval": identity_retrieval(scores),
        "adherence": {k: _mean(s.correct[k] for s in scores) for k in reported_attributes(scores)},
        "adherence_instructed": _mean(s.instructed_adherence for s in scores),
        "orientation_changed": {"accuracy": _mean(s.correct["orientation"] for s in changed), "n": len(changed)},
        "copy_paste": {**copy, "rate": None if math.isnan(copy["rate"]) else copy["rate"]},
    }

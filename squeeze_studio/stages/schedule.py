"""The stage plan (docs/DESIGN.md 2.5): tau1 >= tau2 split the trajectory, t = 1 being pure noise.

- t >= tau1: ``MLLM_ONLY``. Reference VAE tokens are left out of the sequence entirely, so global layout
  and semantics form freely (no copy-paste) and the step is cheaper.
- tau2 <= t < tau1: ``JOINT``, MLLM stream and reference VAE tokens.
- t < tau2: ``VAE_FOCUSED``. The MLLM stream gives way and identity detail is refined from the reference
  tokens. What replaces it is a reading the paper leaves open (``VaeFocusedReading``): the null conditioning
  (empty instruction, no images) or the instruction read by the MLLM without the references (the pipeline's
  default, by measurement: docs/DESIGN.md 5.2).
  Classifier-free guidance is skipped in these steps.

With ``ramp=True`` the switch at tau1 is smooth: across the joint band the reference tokens' attention
weight rises linearly from ~0 at tau1 to 1 at tau2 (``backbones.reference_bias``), at the joint step's cost.

The boundaries are the paper's (t >= tau1 is MLLM-only), compared with a tolerance of ``BOUNDARY_TOLERANCE`` so
that float32 rounding of a step's noise level (0.94999999 for 0.95) never decides a split: at 20 steps the
paper's 0.95 / 0.85 gives 2 | 2 | 16. One exception: tau1 = 1 means "no MLLM-only step" (references from the
first step, which starts at t = 1), so that 1 / 0 is "MLLM + VAE at every step" and 0 / 0 "MLLM only
throughout" (docs/DESIGN.md 5.1).
"""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

BOUNDARY_TOLERANCE = 1e-5  # far above float32 rounding of t in [0, 1], far below any step spacing


class Stage(str, enum.Enum):
    MLLM_ONLY = "mllm_only"
    JOINT = "joint"
    VAE_FOCUSED = "vae_focused"

    @property
    def uses_references(self) -> bool:
        return self is not Stage.MLLM_ONLY

    @property
    def uses_instruction(self) -> bool:
        return self is not Stage.VAE_FOCUSED


class VaeFocusedReading(str, enum.Enum):
    """What conditions the VAE-focused steps (t < tau2) in place of the joint MLLM stream."""

    NULL = "null"  # the empty instruction without images: identity from the reference VAE tokens alone
    TEXT = "text"  # the instruction read without the references: its text kept, the MLLM's image tokens dropped


def stage_at(t: float, tau1: float, tau2: float) -> Stage:
    """The stage of a step that starts at noise level ``t`` (see the module's rule)."""
    if tau1 < 1.0 and t >= tau1 - BOUNDARY_TOLERANCE:
        return Stage.MLLM_ONLY
    if t >= tau2 - BOUNDARY_TOLERANCE:
        return Stage.JOINT
    return Stage.VAE_FOCUSED


@dataclass(frozen=True)
class StagePlan:
    """One ``Stage`` per denoising step, from the noise levels ``t`` the steps start at."""

    stages: tuple[Stage, ...]
    tau1: float
    tau2: float
    reference_weights: tuple[float, ...] = ()  # per step; empty: 1 wherever references are used

    @classmethod
    def from_taus(cls, t_values: Sequence[float], tau1: float, tau2: float, ramp: bool = False) -> StagePlan:
        if not 0.0 <= tau2 <= tau1 <= 1.0:
            raise ValueError(f"stage thresholds need 0 <= tau2 <= tau1 <= 1 (got tau1={tau1}, tau2={tau2})")
        stages = tuple(stage_at(float(t), tau1, tau2) for t in t_values)
        weights = ()
        if ramp and tau1 > tau2:
            weights = tuple(min(1.0, (tau1 - float(t)) / (tau1 - tau2)) if s is Stage.JOINT else 1.0
                            for t, s in zip(t_values, stages, strict=True))
        return cls(stages, tau1, tau2, weights)

    def reference_weight(self, step: int) -> float:
        """How much the reference tokens count in attention at ``step`` (1 unless the plan ramps)."""
        return self.reference_weights[step] if self.reference_weights else 1.0

    def __len__(self) -> int:
        return len(self.stages)

    def __getitem__(self, step: int) -> Stage:
        return self.stages[step]

    def count(self, stage: Stage) -> int:
        return self.stages.count(stage)

    def summary(self) -> str:
        """e.g. ``"2 MLLM-only | 3 joint | 15 VAE-focused"``."""
        return (f"{self.count(Stage.MLLM_ONLY)} MLLM-only | {self.count(Stage.JOINT)} joint | "
                f"{self.count(Stage.VAE_FOCUSED)} VAE-focused")

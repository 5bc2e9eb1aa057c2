"""What the ablations compare: training variants of the demo recipe at one budget, and the inference settings
each is scored at. Plain Python: the CLI reads it before torch is imported."""
from __future__ import annotations

from dataclasses import dataclass

from ..eval.settings import StageSetting

SCHEDULES = ("two-stage", "single-stage", "single-stage-aware")


@dataclass(frozen=True)
class Variant:
    name: str  # folder and JSON key
    label: str
    connector: str = "dla"  # LayerConnector mode
    schedule: str = "two-stage"  # one of SCHEDULES
    copy_rich: bool = False  # half the training examples reward copying the reference's pose and placement
    pretrained_mllm: bool = False  # stage 0b: the MLLM pre-trained on scene captions and questions, then frozen
    matched: bool = True  # stage 2 trains what inference runs (docs/DESIGN.md 5.3); False: v3's logit-normal t

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES} (got {self.schedule!r})")


VARIANTS = (
    Variant("dla", "DLA, two-stage (the demo recipe)"),
    Variant("copy_rich", "DLA, two-stage, copy-rich data (induced copy-paste)", copy_rich=True),
    Variant("last_layer", "last layer only", connector="last_layer"),
    Variant("single_stage", "single-stage, no timestep-aware stages", schedule="single-stage"),
    Variant("lap", "single LAP over all tokens", connector="lap"),
    Variant("single_stage_aware", "single-stage, timestep-aware stages", schedule="single-stage-aware"),
    Variant("pretrained_mllm", "DLA, two-stage, MLLM pre-trained on scenes (stage 0b)", pretrained_mllm=True),
    Variant("unmatched", "DLA, two-stage, stage 2 as in v3 (logit-normal t, no stage plan)", matched=False),
)  # in the order they run: the reference model and the copy-paste study first, then one per paper table, then 0b
# Trained once per seed of ``Budget.seeds`` (the paper tables' rows); the others once, at the first seed.
SEEDED = ("dla", "last_layer", "lap", "single_stage", "single_stage_aware")

MLLM_ONLY = StageSetting(0.0, 0.0)
JOINT = StageSetting(1.0, 0.0)  # MLLM + VAE at every step
DEFAULT = StageSetting(0.95, 0.85)
VAE_ONLY = StageSetting(1.0, 1.0)  # the null instruction from the second step on
VAE_ONLY_TEXT = StageSetting(1.0, 1.0, reading="text")  # the instruction read alone from the second step on
DEFAULT_TEXT = StageSetting(0.95, 0.85, reading="text")
VARIANT_SETTINGS = (MLLM_ONLY, JOINT, DEFAULT)
TAU_GRID = (MLLM_ONLY, JOINT, StageSetting(0.97, 0.90), DEFAULT, DEFAULT_TEXT, StageSetting(0.85, 0.70), VAE_ONLY,
            VAE_ONLY_TEXT)
GUIDANCES = (2.5, 4.0)
# One step beyond the paper: each hard pair with a joint band, with the switch at tau1 made a ramp.
SMOOTH_PAIRS = (JOINT, StageSetting(0.97, 0.90), DEFAULT, StageSetting(0.85, 0.70))
SMOOTH_GRID = tuple(StageSetting(s.tau1, s.tau2, ramp=True) for s in SMOOTH_PAIRS)


@dataclass(frozen=True)
class Budget:
    """Equal for every variant: optimiser steps at one batch size (two-stage variants split them)."""

    steps: int = 2400
    align_share: float = 0.42  # the demo recipe's 4,000 / 9,500
    eval_count: int = 128
    grid_rows: int = 6
    mllm_steps: int = 3000  # stage 0b for the pre-trained-MLLM variant; made once before it, like the VAE
    seeds: tuple[int, ...] = (0, 1)  # training seeds (initialisation and batches) for the SEEDED variants

    def __post_init__(self) -> None:
        if self.steps < 2:
            raise ValueError(f"the budget needs at least 2 steps per variant (got {self.steps})")
        if self.eval_count < 1:
            raise ValueError(f"at least one test example is needed (got {self.eval_count})")
        if not self.seeds:
            raise ValueError("at least one training seed is needed")

    @property
    def align_steps(self) -> int:
        return max(1, round(self.steps * self.align_share))

    def runs(self, variant: Variant) -> list[tuple[str, int]]:
        """(result key, training seed) per run of ``variant``: its name for the first seed, ``name@seed`` after."""
        seeds = self.seeds if variant.name in SEEDED else self.seeds[:1]
        return [(variant.name if i == 0 else f"{variant.name}@{seed}", seed) for i, seed in enumerate(seeds)]

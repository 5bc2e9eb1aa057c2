"""What each stage's steps cost, against a step of stock CFG (both streams, reference tokens in the sequence).

A step's transformer work is counted as forward passes times the tokens they carry (the linear layers, which
dominate at these sizes, grow with the tokens): an MLLM-only step runs both streams without the reference tokens,
a joint step both streams with them, a VAE-focused step one stream (no guidance) with them. Each reference is
counted as many tokens as the output (both are shown at about the same area by default); text tokens are left out.
Plain Python: the window imports this.
"""
from __future__ import annotations

from collections.abc import Sequence

from .schedule import Stage, stage_at


def step_passes(stage: Stage, guidance_scale: float) -> int:
    """Transformer forward passes of one step (``SqueezePipeline.velocity``)."""
    if stage is Stage.VAE_FOCUSED or guidance_scale <= 1.0:
        return 1
    return 2


def step_cost(stage: Stage, guidance_scale: float, references: int) -> float:
    """One step's work as a fraction of a stock CFG step with ``references`` references."""
    tokens = 1 + (references if stage.uses_references else 0)
    return step_passes(stage, guidance_scale) * tokens / (2 * (1 + references))


def uniform_stages(steps: int, tau1: float, tau2: float) -> list[Stage]:
    """The stages of ``steps`` steps on the unshifted schedule (noise levels 1 .. 1/steps): the window's estimate
    before a run (a model whose scheduler shifts the levels puts a step or two more above tau1)."""
    return [stage_at(1.0 - i / steps, tau1, tau2) for i in range(steps)]


def schedule_work(stages: Sequence[Stage], guidance_scale: float, references: int) -> float:
    """The run's work as a fraction of stock CFG at every step."""
    return sum(step_cost(s, guidance_scale, references) for s in stages) / max(len(stages), 1)

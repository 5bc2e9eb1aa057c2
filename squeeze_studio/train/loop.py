"""The optimiser loop every training stage shares (0a VAE, 0b MLLM, stages 1 and 2): randomness seeded per
step, so a resumed run draws exactly what an uninterrupted one would; linear warm-up then cosine decay;
the loss logged every ``log_every`` steps; accelerate checkpoints every ``checkpoint_every`` steps and at
the end, so a rerun of a finished stage loads its final weights and trains nothing."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .checkpoint import StageProgress


@dataclass(frozen=True)
class LoopSettings:
    name: str  # the "stage" of each log record
    steps: int
    learning_rate: float
    warmup_steps: int
    log_every: int
    checkpoint_every: int
    seed: int
    clip_norm: float | None = 1.0


def learning_rate_at(peak: float, step: int, steps: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    return peak * min(1.0, (step + 1) / max(warmup, 1)) * (0.1 + 0.45 * (1 + math.cos(math.pi * step / steps)))


def run_steps(settings: LoopSettings, accelerator, optimizer, progress: StageProgress,
              step_loss: Callable[[torch.Generator], torch.Tensor],
              on_log: Callable[[dict], None] | None = None) -> dict:
    """Resume from ``progress`` and run the remaining steps; ``step_loss(generator)`` draws its batch from
    ``generator`` and returns the loss of the prepared (training-mode) modules. Returns the progress data."""
    start_step = progress.restore(accelerator)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    began, seconds_before, losses = time.perf_counter(), progress.data.get("seconds", 0.0), []
    for step in range(start_step, settings.steps):
        generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + step)
        lr = learning_rate_at(settings.learning_rate, step, settings.steps, settings.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = step_loss(generator)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if settings.clip_norm is not None:
            accelerator.clip_grad_norm_(params, settings.clip_norm)
        optimizer.step()
        losses.append(loss.item())
        done_steps, seconds = step + 1, seconds_before + time.perf_counter() - began
        if done_steps % settings.log_every == 0 or done_steps == settings.steps:
            recent = losses[-settings.log_every:]
            record = {"stage": settings.name, "step": done_steps, "loss": sum(recent) / len(recent), "lr": lr,
                      "seconds": round(seconds, 1)}
            progress.update(log=progress.data.get("log", []) + [record])
            if on_log:
                on_log(record)
        if done_steps % settings.checkpoint_every == 0 and done_steps < settings.steps:
            progress.save(accelerator, step=done_steps, seconds=seconds)
    if not progress.done:  # the final state too: a rerun (or the next stage's resume) starts from these weights
        progress.save(accelerator, step=settings.steps, seconds=seconds_before + time.perf_counter() - began,
                      done=True)
    return progress.data

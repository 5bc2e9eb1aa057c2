"""The optimiser loop every training stage shares (0a VAE, 0b MLLM, stages 1 and 2): randomness seeded per
step (and per process), so a resumed run draws exactly what an uninterrupted one would; linear warm-up then
cosine decay; optional gradient accumulation over micro-batches; the loss logged every ``log_every`` steps;
accelerate checkpoints every ``checkpoint_every`` steps and at the end, so a rerun of a finished stage loads
its final weights and trains nothing."""
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
    accumulation: int = 1  # micro-batches per optimiser step (their gradients averaged)


def learning_rate_at(peak: float, step: int, steps: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    return peak * min(1.0, (step + 1) / max(warmup, 1)) * (0.1 + 0.45 * (1 + math.cos(math.pi * step / steps)))


def step_seed(seed: int, step: int, process: int = 0, processes: int = 1) -> int:
    """The generator seed of one step: one process draws what it always drew; several draw different batches."""
    return (seed * 1_000_003 + step) * processes + process


def _clip(accelerator, params, models, clip_norm: float) -> None:
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.FSDP and models:
        for model in models:  # accelerate clips a sharded model's global norm when given all its parameters
            accelerator.clip_grad_norm_(model.parameters(), clip_norm)
    else:
        accelerator.clip_grad_norm_(params, clip_norm)


def run_steps(settings: LoopSettings, accelerator, optimizer, progress: StageProgress,
              step_loss: Callable[[torch.Generator], torch.Tensor],
              on_log: Callable[[dict], None] | None = None, models: tuple = ()) -> dict:
    """Resume from ``progress`` and run the remaining steps; ``step_loss(generator)`` draws its batch from
    ``generator`` and returns the loss of the prepared (training-mode) modules, ``models``. Returns the
    progress data."""
    start_step = progress.restore(accelerator)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    began, seconds_before, losses = time.perf_counter(), progress.data.get("seconds", 0.0), []
    for step in range(start_step, settings.steps):
        seed = step_seed(settings.seed, step, accelerator.process_index, accelerator.num_processes)
        generator = torch.Generator().manual_seed(seed)
        lr = learning_rate_at(settings.learning_rate, step, settings.steps, settings.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(settings.accumulation):
            loss = step_loss(generator)
            accelerator.backward(loss / settings.accumulation if settings.accumulation > 1 else loss)
            total += loss.item()
        if settings.clip_norm is not None:
            _clip(accelerator, params, models, settings.clip_norm)
        optimizer.step()
        losses.append(total / settings.accumulation)
        done_steps, seconds = step + 1, seconds_before + time.perf_counter() - began
        if done_steps % settings.log_every == 0 or done_steps == settings.steps:
            recent = losses[-settings.log_every:]
            record = {"stage": settings.name, "step": done_steps, "loss": sum(recent) / len(recent), "lr": lr,
                      "seconds": round(seconds, 1)}
            progress.update(log=progress.data.get("log", []) + [record])
            if on_log and accelerator.is_main_process:
                on_log(record)
        if done_steps % settings.checkpoint_every == 0 and done_steps < settings.steps:
            progress.save(accelerator, step=done_steps, seconds=seconds)
    if not progress.done:  # the final state too: a rerun (or the next stage's resume) starts from these weights
        progress.save(accelerator, step=settings.steps, seconds=seconds_before + time.perf_counter() - began,
                      done=True)
    return progress.data

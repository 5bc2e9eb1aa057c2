"""Step caching on the transformer, built on diffusers' own cache hooks, and regional compilation.

A cache skips part of a step's transformer work by reusing what an earlier step of the same stream computed:

- ``first-block`` (diffusers' ``FirstBlockCacheConfig``): the first block always runs; when its residual changed
  by less than ``threshold`` (relative mean absolute difference) since the stream's last full pass, the other
  blocks are skipped and their stored residual is added instead.
- ``taylorseer`` (diffusers' ``TaylorSeerCacheConfig``, lite variant): full passes on the first
  ``WARMUP`` steps of a stage, then every ``INTERVAL``-th; in between the blocks are skipped and the transformer's
  output projection is extrapolated (first-order Taylor) from the last two full passes.

diffusers' MagCache is not offered: it needs magnitude ratios calibrated per checkpoint and indexed by its own step
counter, which the resets below restart at every stage.

Each stream (``positive``, ``negative``, ``vae_focused``) runs in its own ``cache_context``, so one never reuses
another's residuals. At a stage boundary the sequence (reference tokens join at tau1) and the conditioning (tau2)
change, so every cache is reset there (``StepCache.begin_stage``): the first step of each stage is a full pass,
and nothing computed before tau1 or tau2 is reused after it (tests/engine/test_step_cache.py checks both).

``StepCache`` also counts the transformer's forward passes and, through a forward hook on the last block's query
projection (which a skipped pass never reaches), the passes computed in full.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from ..request import CACHE_MODES

FIRST_BLOCK_THRESHOLD = 0.2  # diffusers' default 0.05 skips no pass of the demo at 20 steps (docs/models.md)
TAYLORSEER_WARMUP = 2  # full passes at the start of every stage (the Taylor factors need two)
TAYLORSEER_INTERVAL = 3  # then one full pass in three


def check_cache_mode(mode: str) -> str:
    if mode not in CACHE_MODES:
        raise ValueError(f"unknown cache mode {mode!r}; choose one of {', '.join(CACHE_MODES)}")
    return mode


def cache_config(mode: str):
    """diffusers' config object for ``mode`` (``None`` for ``"none"``)."""
    from diffusers.hooks import FirstBlockCacheConfig, TaylorSeerCacheConfig

    check_cache_mode(mode)
    if mode == "first-block":
        return FirstBlockCacheConfig(threshold=FIRST_BLOCK_THRESHOLD)
    if mode == "taylorseer":
        return TaylorSeerCacheConfig(cache_interval=TAYLORSEER_INTERVAL, disable_cache_before_step=TAYLORSEER_WARMUP,
                                     max_order=1, taylor_factors_dtype=torch.float32, use_lite_mode=True)
    return None


def _probe_module(transformer: torch.nn.Module) -> torch.nn.Module:
    """A module that runs only when the transformer's last block really computes (a cached pass skips it)."""
    block = transformer.transformer_blocks[-1]
    attn = getattr(block, "attn", None)
    return getattr(attn, "to_q", None) or block


class StepCache:
    """The cache mode of one transformer, its per-stream contexts, the stage resets and the pass counts."""

    def __init__(self, transformer: torch.nn.Module):
        self.transformer = transformer
        self.mode = "none"
        self.passes = 0  # transformer forward passes since ``start``
        self.full_passes = 0  # of which the last block really computed
        self._probe = None
        self._stage = None

    def use(self, mode: str, config=None) -> None:
        """Switch to ``mode`` (``config``: a diffusers cache config to use instead of the mode's own)."""
        check_cache_mode(mode)
        if mode == self.mode and config is None:
            return
        if self.transformer.is_cache_enabled:
            self.transformer.disable_cache()
        if mode != "none":
            self.transformer.enable_cache(config or cache_config(mode))
        self.mode = mode

    def start(self) -> None:
        """Before a run: nothing from an earlier (or cancelled) run is reused; the counts start at zero."""
        self.passes = self.full_passes = 0
        self._stage = None
        self.reset()
        if self._probe is None:
            self._probe = _probe_module(self.transformer).register_forward_hook(self._count_full)

    def _count_full(self, *_args) -> None:
        self.full_passes += 1

    def reset(self) -> None:
        if self.mode != "none":
            self.transformer._reset_stateful_cache()

    def begin_stage(self, stage) -> None:
        """Called before every step: at a stage boundary every stream's cache is emptied."""
        if stage != self._stage:
            self.reset()
            self._stage = stage

    @contextmanager
    def context(self, stream: str, step: int):
        self.passes += 1
        if self.mode == "none":
            yield
            return
        with self.transformer.cache_context(stream, step_index=step):
            yield

    def finish(self) -> None:
        """After a run: give the cached tensors back and remove the counting hook."""
        self.reset()
        if self._probe is not None:
            self._probe.remove()
            self._probe = None


class BlockCompiler:
    """The engine's compilation: the blocks are compiled the first time a request asks on CUDA (elsewhere a note
    says so), and the first compiled image's time is kept, so every later one can say what compiling cost."""

    def __init__(self, pipe, device_name: str):
        self.pipe, self.device_name = pipe, device_name
        self.compiled = False
        self._first_seconds: float | None = None

    def prepare(self, asked: bool) -> str:
        """Before a run: compile if asked (CUDA only); a one-line note when it was asked in vain, else ""."""
        if asked and not self.device_name.startswith("cuda"):
            return f"compiling applies to CUDA only; ran uncompiled on {self.device_name}"
        if asked and not self.compiled:
            self.pipe.compile_blocks()
            self.compiled = True
        return ""

    def timing(self, seconds: float) -> str:
        """After a compiled run: the first image's time (which compiled) against this one's."""
        if self._first_seconds is None:
            self._first_seconds = seconds
            return f"compiled: this first image compiled the blocks ({seconds:.1f} s); the next ones reuse them"
        extra = self._first_seconds - seconds
        return f"compiled: {seconds:.1f} s; the first image took {self._first_seconds:.1f} s ({extra:+.1f} s)"


def compile_blocks(transformer: torch.nn.Module) -> None:
    """``torch.compile`` the transformer's repeated blocks (diffusers' regional compilation): the first run
    compiles them (slow), later runs at the same sizes reuse the compiled code."""
    transformer.compile_repeated_blocks()

"""Generating the outputs an evaluation scores: one model loaded once, one image per (example, setting).

Seeds are fixed per example (``seed + example.index``) and shared by every setting, so settings are
compared on the same noise and any single output can be regenerated alone. The MLLM encoding of an
example is made once before its settings run (the pipeline caches it by references + instruction), so
``seconds`` per image is the denoise + decode cost of the setting and the encoding is timed apart.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..engine import Engine
from .settings import StageSetting

NEGATIVE_PROMPT = " "


@dataclass
class Generated:
    image: Image.Image
    seconds: float
    stages: str  # the stage plan's summary, e.g. "1 MLLM-only | 3 joint | 16 VAE-focused"


class Runner:
    def __init__(self, model: str | os.PathLike | None, device: str | None = None, steps: int = 20,
                 cfg: float = 2.5, size: int = 64, seed: int = 0, addon: str | os.PathLike | None = None,
                 memory: str = "auto"):
        if seed < 0:
            raise ValueError(f"--seed must not be negative (got {seed})")
        self.engine = Engine(model, addon, device=device, previews=False, memory=memory)
        self.pipe = self.engine.pipe
        self.steps, self.cfg, self.size, self.seed = steps, cfg, size, seed
        self.pipe.check_inputs([], "check", size, size, steps, 0.0, 0.0, cfg)  # fail before the first example

    @property
    def device(self) -> str:
        return self.engine.device_name

    @property
    def mllm_runs(self) -> int:
        return self.engine.mllm_runs

    def seed_for(self, index: int) -> int:
        return self.seed + index

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    @torch.no_grad()
    def encode(self, references: list[Image.Image], instruction: str) -> float:
        """Make (or find cached) the example's MLLM and VAE reference encodings; returns seconds taken."""
        start = time.perf_counter()
        self.pipe.encode(references, instruction, NEGATIVE_PROMPT)
        self._sync()
        return time.perf_counter() - start

    def generate(self, references: list[Image.Image], instruction: str, setting: StageSetting, index: int
                 ) -> Generated:
        start = time.perf_counter()
        out = self.pipe(image=references, prompt=instruction, negative_prompt=NEGATIVE_PROMPT,
                        tau1=setting.tau1, tau2=setting.tau2, reference_ramp=setting.ramp, guidance_scale=self.cfg,
                        vae_focused_reading=setting.reading, cache=setting.cache,
                        num_inference_steps=self.steps, height=self.size, width=self.size,
                        generator=torch.Generator("cpu").manual_seed(self.seed_for(index)), output_type="pil")
        return Generated(out.images[0].convert("RGB"), time.perf_counter() - start, out.stage_plan.summary())


def as_array(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8."""
    return np.asarray(image.convert("RGB")).copy()

"""The one object that describes a generation.

The window fills it, the worker consumes it, the PNG recipe serialises it and a dropped PNG restores
it. Plain Python only: the app imports this module at start-up, before torch is loaded.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# Paper defaults (arXiv 2605.26111): tau1 = 0.95, tau2 = 0.85, CFG 2.5.
DEFAULT_TAU1 = 0.95
DEFAULT_TAU2 = 0.85
DEFAULT_GUIDANCE = 2.5


@dataclass
class GenerationRequest:
    """Everything relevant to one generation.

    ``tau1``/``tau2`` split the denoising trajectory (t = 1 is pure noise): steps with t > tau1 see
    the MLLM stream only, steps with tau2 <= t <= tau1 see MLLM + VAE reference tokens, steps with
    t < tau2 are VAE-focused. tau1 = 1, tau2 = 0 is "MLLM + VAE at every step"; tau1 = tau2 = 0 is
    MLLM-only throughout. ``width``/``height`` of ``None`` mean the model's native size.
    """

    instruction: str
    references: list[str] = field(default_factory=list)
    negative_prompt: str = " "
    tau1: float = DEFAULT_TAU1
    tau2: float = DEFAULT_TAU2
    guidance_scale: float = DEFAULT_GUIDANCE
    num_inference_steps: int = 20
    seed: int = 0
    width: int | None = None
    height: int | None = None
    batch_count: int = 1
    model: str = ""  # "" = the built-in demo; a folder or a repo id from the Hugging Face cache
    addon: str = ""  # an add-on folder for that model, or ""

    def validate(self) -> None:
        """Raise ``ValueError`` with a one-line message for settings no backbone can run."""
        if self.num_inference_steps < 1:
            raise ValueError(f"steps must be at least 1 (got {self.num_inference_steps})")
        if not 0.0 <= self.tau2 <= self.tau1 <= 1.0:
            raise ValueError(f"stage thresholds need 0 <= tau2 <= tau1 <= 1 (got tau1={self.tau1}, tau2={self.tau2})")
        if self.guidance_scale < 0:
            raise ValueError(f"guidance must not be negative (got {self.guidance_scale})")
        if self.batch_count < 1:
            raise ValueError(f"batch count must be at least 1 (got {self.batch_count})")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive (got {value})")
        if self.seed < 0:
            raise ValueError(f"seed must not be negative (got {self.seed})")

    def replace(self, **changes: Any) -> GenerationRequest:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        """Build from a dict, ignoring keys this version does not know (recipes from newer versions)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

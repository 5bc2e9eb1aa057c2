"""Which steps each stage gets at few steps, on the real schedulers' noise levels at 1024 x 1024 (docs/DESIGN.md 5.4).

    python benchmarks/stage_plans.py

Qwen-Image-Edit-2509's own scheduler (its reference config) and the Lightning LoRAs' settings
(``hub.registry.LIGHTNING_SCHEDULER``), through the Qwen-Image adapter's ``set_timesteps`` (the tiny pipeline's
adapter has the real 8x VAE and 2x2 patches, so the resolution shift is the real one) and ``StagePlan.from_taus``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from diffusers import FlowMatchEulerDiscreteScheduler  # noqa: E402

from squeeze_studio.hub.reference_configs import QWEN_IMAGE_EDIT_PLUS  # noqa: E402
from squeeze_studio.hub.registry import LIGHTNING_SCHEDULER  # noqa: E402
from squeeze_studio.stages import StagePlan  # noqa: E402
from squeeze_studio.testing.tiny import build_tiny_pipeline  # noqa: E402

SHORT = {"mllm_only": "M", "joint": "J", "vae_focused": "V"}


def main() -> None:
    backbone = build_tiny_pipeline().backbone
    own = FlowMatchEulerDiscreteScheduler.from_pretrained(QWEN_IMAGE_EDIT_PLUS, subfolder="scheduler")
    lightning = FlowMatchEulerDiscreteScheduler.from_config({**own.config, **LIGHTNING_SCHEDULER})
    print("| scheduler | steps | step starts t | tau1 / tau2 | stages (M MLLM-only, J joint, V VAE-focused) |")
    print("|---|---|---|---|---|")
    for label, scheduler in (("Qwen-Image-Edit-2509's own", own), ("Lightning (ln 3 shift)", lightning)):
        for steps in (4, 8):
            timesteps = backbone.set_timesteps(scheduler, steps, 1024, 1024, "cpu")
            sigmas = scheduler.sigmas[: len(timesteps)].tolist()
            for tau1, tau2 in ((0.95, 0.85), (1.0, 0.0)):
                plan = StagePlan.from_taus(sigmas, tau1, tau2)
                print(f"| {label} | {steps} | {' '.join(f'{s:.2f}' for s in sigmas)} | {tau1:g} / {tau2:g} | "
                      f"{' '.join(SHORT[s.value] for s in plan.stages)} ({plan.summary()}) |")


if __name__ == "__main__":
    main()

"""The models Squeeze Studio knows by name: what to download, what it weighs, what GPU memory it needs.

A short list kept by hand, so the window and ``squeeze models download`` can offer a model before anything
is on disk. Every entry loads with diffusers' ``QwenImageEditPlusPipeline`` (or is the built-in demo).

Sizes: ``download_bytes`` is the total the Hub's file listing shows, rounded; ``manager.download_size``
asks the Hub for the exact bytes still missing before a download starts. ``vram_gib`` is the peak GPU memory per
memory mode at 1024 x 1024 with two references in bf16, as ``squeeze models plan`` predicts it from the
architecture's reference configs (``squeeze_studio.memory``; a test keeps the two equal): estimates, not
measurements, which ``vram_is_estimate`` says.

``KNOWN_LORAS``: the few-step distillation LoRAs (Lightning 4 and 8 steps for 2509 and 2511), one file each, with
the settings they need (``hub.defaults.LoraDefaults``); ``squeeze models download KEY`` fetches one.

Plain Python, no torch: the window reads it at start-up.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..memory.modes import PLANNED_MODES
from .defaults import LoraDefaults

FAMILY = "qwen_image_edit_plus"
MEMORY_MODES = PLANNED_MODES  # the keys of vram_gib: squeeze_studio.memory's modes, "auto" aside

_QWEN_EDIT_VRAM = {"full": 58.6, "model-offload": 39.9, "group-offload": 5.3, "sequential": 4.3,
                   "multi-gpu": 41.7}
_QWEN_EDIT_BYTES = 57_700_000_000
_QWEN_EDIT_NOTES = ("Download size: the Hub's listing, rounded (transformer ~40.9 GB in 9 shards, text encoder "
                    "~16.6 GB in 4, VAE ~0.25 GB); the exact figure is asked for before downloading. GPU memory per "
                    "memory mode at 1024 x 1024 with two references: predicted from the configs (squeeze models "
                    "plan), an estimate, not measured; multi-gpu is per card, sequential is slow; --weights fp8 "
                    "brings model-offload to ~21 GiB.")


@dataclass(frozen=True)
class KnownModel:
    """One downloadable (or built-in) model and what it costs."""

    key: str  # short name: "qwen-image-edit-2509", "qwen-image-edit-2511", "demo"
    repo_id: str | None  # None for the built-in demo
    revision: str  # "main" unless pinned
    family: str
    license: str
    download_bytes: int  # total download; an estimate unless `notes` says otherwise
    vram_gib: dict[str, float] = field(hash=False)  # per memory mode (MEMORY_MODES)
    vram_is_estimate: bool
    title: str
    notes: str


KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel(
        key="demo", repo_id=None, revision="main", family=FAMILY, license="Apache-2.0", download_bytes=0,
        vram_gib={mode: 0.1 for mode in MEMORY_MODES}, vram_is_estimate=True,
        title="Built-in demo model",
        notes="Ships with Squeeze Studio (resources/demo-model, ~15 MB): a 64 x 64 model trained on a CPU; nothing "
              "to download. Runs on a CPU; the VRAM figure is an estimate."),
    KnownModel(
        key="qwen-image-edit-2509", repo_id="Qwen/Qwen-Image-Edit-2509", revision="main", family=FAMILY,
        license="Apache-2.0", download_bytes=_QWEN_EDIT_BYTES, vram_gib=dict(_QWEN_EDIT_VRAM),
        vram_is_estimate=True, title="Qwen-Image-Edit-2509",
        notes="Multi-image editing base (September 2025). " + _QWEN_EDIT_NOTES),
    KnownModel(
        key="qwen-image-edit-2511", repo_id="Qwen/Qwen-Image-Edit-2511", revision="main", family=FAMILY,
        license="Apache-2.0", download_bytes=_QWEN_EDIT_BYTES, vram_gib=dict(_QWEN_EDIT_VRAM),
        vram_is_estimate=True, title="Qwen-Image-Edit-2511",
        notes="Successor of 2509 (November 2025), same QwenImageEditPlusPipeline and component sizes. "
              + _QWEN_EDIT_NOTES),
)


def known_model(name: str) -> KnownModel | None:
    """The entry whose key or repo id is ``name`` (case-insensitive), else ``None``."""
    wanted = (name or "").strip().lower()
    for model in KNOWN_MODELS:
        if wanted == model.key or model.repo_id is not None and wanted == model.repo_id.lower():
            return model
    return None


# --- distillation LoRAs -----------------------------------------------------------------------------------------
# Few-step LoRAs need their own noise schedule: the Lightning authors distil with shift 3 and run diffusers'
# FlowMatchEulerDiscreteScheduler with base_shift = max_shift = ln 3, exponential time shift and no terminal
# stretch (ModelTC/Qwen-Image-Lightning, generate_with_diffusers.py), at guidance 1 (no CFG).
LIGHTNING_SCHEDULER = {"base_shift": math.log(3), "max_shift": math.log(3), "shift": 1.0, "shift_terminal": None,
                       "use_dynamic_shifting": True, "time_shift_type": "exponential", "base_image_seq_len": 256,
                       "max_image_seq_len": 8192}
_LIGHTNING_BYTES = 850_000_000  # each bf16 file, as the Hub's listing shows it


@dataclass(frozen=True)
class KnownLora:
    """One downloadable LoRA: one file of a repo, the bases it is made for and the settings it needs."""

    key: str
    repo_id: str
    filename: str  # path inside the repo
    revision: str
    bases: tuple[str, ...]  # registry keys of the models it was trained on
    download_bytes: int
    defaults: LoraDefaults = field(hash=False)
    title: str


def _lightning(base: str, steps: int, repo: str, folder: str) -> KnownLora:
    name = f"Qwen-Image-Edit-{base}-Lightning-{steps}steps-V1.0-bf16.safetensors"
    defaults = LoraDefaults(steps=steps, guidance_scale=1.0, scheduler=dict(LIGHTNING_SCHEDULER),
                            origin=f"registry: lightx2v Lightning {steps}-step for Qwen-Image-Edit-{base}")
    return KnownLora(key=f"lightning-{base}-{steps}step", repo_id=repo, filename=folder + name, revision="main",
                     bases=(f"qwen-image-edit-{base}",), download_bytes=_LIGHTNING_BYTES, defaults=defaults,
                     title=f"Lightning {steps}-step LoRA for Qwen-Image-Edit-{base} (lightx2v)")


KNOWN_LORAS: tuple[KnownLora, ...] = (
    _lightning("2509", 4, "lightx2v/Qwen-Image-Lightning", "Qwen-Image-Edit-2509/"),
    _lightning("2509", 8, "lightx2v/Qwen-Image-Lightning", "Qwen-Image-Edit-2509/"),
    _lightning("2511", 4, "lightx2v/Qwen-Image-Edit-2511-Lightning", ""),
    _lightning("2511", 8, "lightx2v/Qwen-Image-Edit-2511-Lightning", ""),
)


def known_lora(name: str) -> KnownLora | None:
    """The LoRA entry whose key is ``name`` (case-insensitive), else ``None``."""
    wanted = (name or "").strip().lower()
    return next((lora for lora in KNOWN_LORAS if lora.key == wanted), None)


def known_lora_file(filename: str) -> KnownLora | None:
    """The LoRA entry whose file is called ``filename`` (its last path part), else ``None``."""
    return next((lora for lora in KNOWN_LORAS if lora.filename.rsplit("/", 1)[-1] == filename), None)

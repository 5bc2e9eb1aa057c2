"""The memory modes: names, what each does, and which is lighter than which. Plain Python (no torch).

Every mode is built on what diffusers and accelerate provide; ``memory.apply`` applies them to a loaded pipeline.
"""
from __future__ import annotations

MEMORY_MODES = ("auto", "full", "model-offload", "group-offload", "sequential", "multi-gpu")
# The modes a plan can be made for, heaviest and fastest first on one card; multi-gpu needs two or more cards.
PLANNED_MODES = ("full", "model-offload", "group-offload", "sequential", "multi-gpu")
ONE_CARD_MODES = ("full", "model-offload", "group-offload", "sequential")  # lighter and slower, in this order
# How the transformer's weights are stored: fp8 with bf16 compute (diffusers' layerwise casting, no extra
# library), or 8-bit / 4-bit through bitsandbytes or torchao; a path to a single .gguf or .safetensors
# transformer file is accepted as well.
WEIGHT_FORMATS = ("fp8", "int8", "nf4")

DESCRIPTIONS = {
    "auto": "the fastest mode the memory plan says fits",
    "full": "everything on the GPU, fastest",
    "model-offload": "one whole component on the GPU at a time",
    "group-offload": "the transformer block by block, the MLLM layer by layer, streamed (cards below the "
                     "transformer's size)",
    "sequential": "everything layer by layer, the last resort",
    "multi-gpu": "components spread over several GPUs",
}


def check_mode(mode: str) -> str:
    if mode not in MEMORY_MODES:
        raise ValueError(f"unknown memory mode {mode!r}; choose one of {', '.join(MEMORY_MODES)}")
    return mode


def lighter_modes(mode: str) -> tuple[str, ...]:
    """The one-card modes that need less GPU memory than ``mode``, heaviest first."""
    if mode == "multi-gpu":  # each card holds about what model-offload needs
        return ONE_CARD_MODES[2:]
    return ONE_CARD_MODES[ONE_CARD_MODES.index(mode) + 1:] if mode in ONE_CARD_MODES else ()

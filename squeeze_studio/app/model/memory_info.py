"""What the window says about GPU memory: the device and memory-mode choices, the plan line, out-of-memory lines.

Plain Python (no Qt, no torch). The worker turns an engine's ``MemoryPlan`` into a plain dict (``plan_dict``) and
sends it to the GUI thread; these functions word it. The numbers are the plan's predictions, the measured peak is
CUDA's own count after a run.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

from ...memory.modes import MEMORY_MODES

GIB = 2**30
AUTOMATIC = ""  # the device choice that lets the engine pick the best device present

# The modes in the words of docs/models.md ("GPU memory"), for the mode picker's item tooltips.
MODE_TIPS = {
    "auto": "The fastest mode the memory plan says fits the free VRAM and RAM (the default).",
    "full": "Every component on the GPU: fastest, needs the most VRAM.",
    "model-offload": "One whole component on the GPU at a time; the MLLM leaves after encoding.",
    "group-offload": "The transformer block by block and the MLLM layer by layer, prefetched on a CUDA stream; "
                     "for cards smaller than the transformer.",
    "sequential": "Every component layer by layer: the last resort, slowest.",
    "multi-gpu": "Components spread over two or more GPUs (diffusers' balanced device map).",
}
PLAN_TIP = ("The plan counts the weights each mode keeps on the GPU and in RAM, the MLLM pass with its all-layer "
            "hidden states, the cached encodings and one transformer block's and the VAE's activations at this "
            "size and number of references. Its numbers are predictions from the model's configs, not "
            "measurements; the CUDA context is not counted, so a plan must fit with 10 % to spare.")


def gib(value: int | None) -> str:
    return "?" if value is None else f"{value / GIB:.1f} GiB"


def plan_dict(plan: Any) -> dict:
    """A ``MemoryPlan`` as a plain dict the GUI thread can hold (the window never sees engine types)."""
    return dataclasses.asdict(plan)


def device_kind(device: str) -> str:
    return device.split(":")[0]


def canonical_device(device: str) -> str:
    return "cuda" if device == "cuda:0" else device


def cuda_count(devices: list[str]) -> int:
    return sum(device_kind(d) == "cuda" for d in devices)


def mode_problem(mode: str, device: str, devices: list[str]) -> str:
    """Why ``mode`` cannot run on ``device`` ("" = automatic) with ``devices`` present, or "" when it can (what
    the engine's own check refuses; ``devices`` empty: not known yet, nothing refused)."""
    if not devices:
        return ""
    if mode == "multi-gpu" and cuda_count(devices) < 2:
        return "needs two or more CUDA GPUs"
    resolved = device or devices[0]
    if device_kind(resolved) == "mps" and mode not in ("auto", "full"):
        return "saves nothing on Apple silicon, whose GPU shares the machine's memory"
    return ""


def usable_settings(devices: list[str], device: str, memory: str) -> tuple[str, str, str]:
    """The (device, memory) to load with, given the devices present, and a one-line note when a remembered choice
    cannot be used here (a card that is gone, multi-gpu on one card): it falls back to automatic."""
    notes = []
    device = canonical_device(device)
    if memory not in MEMORY_MODES:
        notes.append(f"memory mode {memory} is unknown")
        memory = "auto"
    if device and devices and device not in devices:
        notes.append(f"device {device} is not present here")
        device = AUTOMATIC
    problem = mode_problem(memory, device, devices)
    if problem:
        notes.append(f"memory mode {memory} {problem}")
        memory = "auto"
    note = f"{'; '.join(notes)}: using automatic instead" if notes else ""
    return device, memory, note[:1].upper() + note[1:]


def plan_line(plan: dict | None, peak: int | None = None) -> str:
    """``plan: 5.3 GiB VRAM, 56.5 GiB RAM (group-offload on cuda) · measured peak 5.9 GiB``; on the CPU the
    plan's RAM only."""
    if not plan:
        return "plan: shown once the model has loaded"
    if plan.get("error"):
        return f"plan: none ({plan['error']})"
    where = f"({plan['mode']} on {plan['device']})"
    if plan["device"] == "cpu":
        text = f"plan: {gib(plan['ram_bytes'])} RAM {where}"
    else:
        text = f"plan: {gib(plan['vram_bytes'])} VRAM, {gib(plan['ram_bytes'])} RAM {where}"
    if peak is not None and plan["device"] != "cpu":
        text += f" · measured peak {gib(peak)}"
    return text


def fit_note(plan: dict | None) -> str:
    """"" when the plan fits (or what is free is unknown), else which memory is short and which mode would fit."""
    if not plan or plan.get("error") or plan["fits"]:
        return ""
    suggestion = plan.get("suggestion") or ""
    free_ram, free_vram = plan.get("free_ram"), plan.get("free_vram")
    if free_ram is not None and plan["ram_bytes"] > free_ram:
        short = f"{gib(free_ram)} available RAM"
    elif plan["mode"] == "multi-gpu":
        short = "one GPU"
    elif plan["device"] != "cpu" and free_vram is not None:
        short = f"{gib(free_vram)} free VRAM"
    else:
        return ""
    hint = f"try {suggestion}" if suggestion else (
        "try a smaller size or fewer references" if short.endswith("VRAM") else "close other programs")
    return f"does not fit in {short}: {hint}"


def plan_tooltip(plan: dict | None) -> str:
    if not plan or plan.get("error"):
        return PLAN_TIP
    references = plan["references"]
    detail = (f"{plan['mode']} on {plan['device']} ({plan['dtype']}) at {plan['width']}x{plan['height']}, "
              f"{references} reference{'' if references == 1 else 's'}")
    free = []
    if plan["device"] != "cpu":
        free.append(f"{gib(plan.get('free_vram'))} VRAM free")
    if plan.get("free_ram") is not None:
        free.append(f"{gib(plan['free_ram'])} RAM available")
    return f"{PLAN_TIP}\n\nThis plan: {detail}; {', '.join(free)} before the model loaded."


_PLAN_IN_MESSAGE = re.compile(r" \(plan: .*\)(?=: )")
_FLAG = re.compile(r"--memory ([\w-]+)")


def window_line(message: str) -> str:
    """An engine's out-of-memory line in the window's words: the plan it quotes is left out (the memory row shows
    it) and ``--memory X`` reads ``memory mode X``."""
    return _FLAG.sub(r"memory mode \1", _PLAN_IN_MESSAGE.sub("", message, count=1))


def is_out_of_memory_line(message: str) -> bool:
    return message.lower().startswith("out of memory")

"""Which devices are here, which one to use, in which dtype, and how much memory is free.

Importable without torch: every function imports it when called (the window calls these from its GUI thread
only after the worker has imported torch, or passes what it already knows).
"""
from __future__ import annotations


def available_devices() -> list[str]:
    """What is present, best first: ``"cuda"`` (GPU 0), ``"cuda:1"``..., ``"mps"``, then ``"cpu"``."""
    import torch

    devices = [f"cuda:{i}" if i else "cuda" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices + ["cpu"]


def default_device() -> str:
    return available_devices()[0]


def cuda_count() -> int:
    import torch

    return torch.cuda.device_count()


def check_device(device: str | None) -> str:
    """``device`` if present here (``None``: the default), else ``ValueError`` with one line."""
    if not device:
        return default_device()
    present = available_devices()
    canonical = "cuda" if device in ("cuda", "cuda:0") else device
    if canonical not in present:
        raise ValueError(f"device {device} is not available here (available: {', '.join(present)})")
    return canonical


def device_kind(device: str) -> str:
    """``"cuda"``, ``"mps"`` or ``"cpu"``."""
    return device.split(":")[0]


def compute_dtype(device: str):
    """bf16 on CUDA, and on Apple MPS where macOS supports it (else fp16); fp32 on the CPU."""
    import torch

    kind = device_kind(device)
    if kind == "cuda":
        return torch.bfloat16
    if kind == "mps":
        return torch.bfloat16 if torch.backends.mps.is_macos_or_newer(14, 0) else torch.float16
    return torch.float32


def free_memory(device: str) -> tuple[int | None, int]:
    """(free accelerator memory, available host memory) in bytes; the first is ``None`` on the CPU and for a
    device that is not here. On Apple silicon the GPU shares the host's memory, so both are the host's."""
    import psutil

    ram = int(psutil.virtual_memory().available)
    if device_kind(device) == "cpu" or device not in available_devices() + ["cuda:0"]:
        return None, ram
    if device_kind(device) == "mps":
        return ram, ram
    import torch

    return int(torch.cuda.mem_get_info(torch.device(device))[0]), ram


def empty_cache(device: str) -> None:
    """Return the allocator's cached blocks to the device after a failure, so the next run starts clean."""
    import torch

    kind = device_kind(device)
    if kind == "cuda":
        torch.cuda.empty_cache()
    elif kind == "mps":
        torch.mps.empty_cache()

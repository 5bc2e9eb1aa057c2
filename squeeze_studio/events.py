"""What a running generation reports back: plain data, no torch, so the window can import it at start-up.

The engine's generators yield ``StepEvent`` after every denoising step and ``ImageResult`` when a
result is ready; a cancel makes them raise ``GenerationCancelled``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from .copy_paste import CopyPaste
from .request import GenerationRequest


@dataclass
class StepEvent:
    """One denoising step done. ``preview`` is a small RGB image of the current x0 estimate."""

    step: int  # 1-based
    total: int
    preview: Image.Image | None
    stage: str  # "mllm_only", "joint" or "vae_focused"
    batch_index: int = 0


@dataclass
class ImageResult:
    """One finished image and the exact request (seed included) that made it. ``info``: what the run took
    (``forward_passes``, ``full_passes``: transformer calls, and those the step cache skipped nothing of) and, when
    compiling, ``compile`` (one line on what compiling cost); the PNG recipe stores it beside the request.
    ``copy_paste``: how much the image is one of the request's references pasted back (``copy_paste.CopyPaste``:
    ``score``, ``reference`` counted from 0, ``over`` the threshold); ``None`` without references."""

    image: Image.Image
    request: GenerationRequest
    seconds: float
    batch_index: int = 0
    info: dict = field(default_factory=dict)
    copy_paste: CopyPaste | None = None


class GenerationCancelled(Exception):
    """Raised inside the engine's loop when the caller's cancel flag was set."""

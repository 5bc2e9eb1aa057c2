"""Results as PNG files that carry their full recipe in text chunks.

Two chunks: ``parameters`` in the A1111 style (readable by other tools and people) and
``squeeze_studio`` holding the exact ``GenerationRequest`` as JSON (what restores the settings).
Files are written atomically, so a crash never leaves half a PNG behind.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from PIL import Image, PngImagePlugin

from .request import GenerationRequest

PARAMETERS_KEY = "parameters"
RECIPE_KEY = "squeeze_studio"
RECIPE_VERSION = 1


def parameters_text(request: GenerationRequest, width: int, height: int) -> str:
    """A1111-style summary: instruction, negative prompt, then one line of ``Key: value`` pairs."""
    fields = [
        ("Steps", request.num_inference_steps),
        ("Sampler", "FlowMatch Euler"),
        ("CFG scale", request.guidance_scale),
        ("Seed", request.seed),
        ("Size", f"{width}x{height}"),
        ("Model", request.model or "demo"),
        ("Stage tau1", request.tau1),
        ("Stage tau2", request.tau2),
        ("References", len(request.references)),
    ]
    if request.addon:  # A1111 names LoRAs the same way: the file's stem
        fields.insert(6, ("Add-on", Path(request.addon).name))
    settings = ", ".join(f"{key}: {value}" for key, value in fields)
    return f"{request.instruction}\nNegative prompt: {request.negative_prompt}\n{settings}"


def save_png(image: Image.Image, path: str | os.PathLike, request: GenerationRequest) -> Path:
    """Write ``image`` with its recipe to ``path`` atomically (temp file in the same folder + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMETERS_KEY, parameters_text(request, image.width, image.height))
    info.add_text(RECIPE_KEY, json.dumps({"version": RECIPE_VERSION, "request": request.to_dict()}))
    fd, tmp = tempfile.mkstemp(prefix=".partial-", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, format="PNG", pnginfo=info)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_recipe(path: str | os.PathLike) -> GenerationRequest | None:
    """The request stored in a PNG written by ``save_png``; ``None`` for any other file."""
    try:
        with Image.open(path) as image:
            text = image.info.get(RECIPE_KEY)
    except (OSError, ValueError):
        return None
    if not text:
        return None
    try:
        return GenerationRequest.from_dict(json.loads(text)["request"])
    except (ValueError, KeyError, TypeError):
        return None

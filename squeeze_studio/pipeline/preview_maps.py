"""Live previews for a base model that ships no preview map: fit one on first use, cache it outside the model.

The latent->RGB map (``backbones.preview``) is fitted against the model's own VAE on a few SynthSubjects
scenes the project renders itself (no files needed), then stored under the user's data folder keyed by the
model's revision, so it is fitted once per model. The Hugging Face cache and the model folder are never
written.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from ..backbones.preview import LatentPreviewProjection
from ..hub.paths import user_data_dir
from ..hub.resolve import ResolvedModel

FIT_SCENES = 8
FIT_GRID = 16  # latent side of each fitting image (128 px through an 8x VAE)


def preview_map_path(source: ResolvedModel) -> Path:
    if source.repo_id:
        key = f"{source.repo_id.replace('/', '--')}@{source.revision}"
    else:  # a folder: its VAE's config and weight files' sizes and times say whether it changed
        vae = source.folder.resolve() / "vae"
        stamp = [str(vae)] + [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(vae.iterdir())]
        key = f"{source.folder.name}-{hashlib.sha1('|'.join(stamp).encode()).hexdigest()[:16]}"
    return user_data_dir() / "preview-maps" / f"{key}.safetensors"


def fitting_images(count: int = FIT_SCENES, size: int = 128):
    """``count`` varied SynthSubjects scenes (subjects, backgrounds, patterns) as PIL images."""
    from PIL import Image

    from ..synth import Attributes, make_subject, render_scene
    from ..synth.palette import COLOUR_NAMES
    from ..synth.scene import BG_PATTERNS

    images = []
    for i in range(count):
        attrs = Attributes(background=COLOUR_NAMES[(3 * i) % len(COLOUR_NAMES)],
                           bg_pattern=BG_PATTERNS[i % len(BG_PATTERNS)], scale="large")
        images.append(Image.fromarray(render_scene(make_subject(1000 + i), attrs, size)[0]))
    return images


def load_or_fit_preview(adapter, source: ResolvedModel) -> LatentPreviewProjection:
    """The cached map for ``source``'s VAE, or a fresh fit (then cached)."""
    from safetensors.torch import load_file, save_file

    from ..backbones.qwen_image import fit_preview_projection

    path = preview_map_path(source)
    projection = LatentPreviewProjection(latent_channels=adapter.latent_channels)
    if path.is_file():
        try:
            projection.load_state_dict(load_file(path))
            return projection.to(adapter.vae.device)
        except (OSError, RuntimeError, ValueError):
            path.unlink(missing_ok=True)  # a stale or broken cache entry: fit again
    projection = fit_preview_projection(adapter, fitting_images(size=FIT_GRID * adapter.vae_scale_factor))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".partial-", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.detach().float().cpu().contiguous() for k, v in projection.state_dict().items()}, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return projection

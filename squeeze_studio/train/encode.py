"""Everything frozen is computed once before training: VAE latents of targets and references, the
subject mask on the token grid, and the MLLM's all-layer states for the instruction, the negative
prompt (both read jointly with the references) and the null conditioning."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


@dataclass
class EncodedExample:
    target: torch.Tensor  # (N, C*4) packed, normalised target latents
    references: torch.Tensor  # (N_ref, C*4) every reference's packed latents, concatenated
    grids: list  # per reference (1, rows, cols)
    subject: torch.Tensor  # (N,) share of each target token covered by the subject (0 without a mask)
    positive: torch.Tensor  # (L + 1, T, d) float16 MLLM states, instruction + references
    positive_image: torch.Tensor  # (T,) bool image-token positions
    negative: torch.Tensor
    negative_image: torch.Tensor


def _load(path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def packed_latents(adapter, images: list[Image.Image], size: int) -> list[torch.Tensor]:
    """Normalised packed latents (N, C*4) per image, each resized to ``size`` x ``size``."""
    return list(adapter.pack(adapter.normalised_latents(images, size, size)).float().cpu())


def subject_weights(mask_path, size: int, token: int) -> torch.Tensor:
    """Subject coverage of each packed token (``token`` x ``token`` pixels), row-major."""
    if mask_path is None:
        return torch.zeros((size // token) ** 2)
    with Image.open(mask_path) as image:
        mask = torch.from_numpy(np.asarray(image.convert("L").resize((size, size))) > 127).float()
    return F.avg_pool2d(mask[None, None], token).flatten()


@torch.no_grad()
def encode_records(pipe, records: list[dict], size: int, batch: int = 16, progress=None) -> list[EncodedExample]:
    adapter, encoder = pipe.backbone, pipe.encoder
    token = adapter.vae_scale_factor * 2
    out = []
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        refs = [[_load(p) for p in r["input_images"]] for r in chunk]
        shown = [[adapter.condition_image(img, pipe.config.condition_image_area) for img in imgs] for imgs in refs]
        prompts = [r["instruction"] for r in chunk] + [" "] * len(chunk)
        states = encoder.encode(prompts, shown + shown)
        targets = packed_latents(adapter, [_load(r["output_image"]) for r in chunk], size)
        for i, record in enumerate(chunk):
            ref_tokens = packed_latents(adapter, refs[i], size)
            rows = size // adapter.vae_scale_factor
            positive, negative = states[i], states[len(chunk) + i]
            out.append(EncodedExample(
                target=targets[i], references=torch.cat(ref_tokens), grids=[(1, rows // 2, rows // 2)] * len(refs[i]),
                subject=subject_weights(record.get("output_mask"), size, token),
                positive=positive.hidden_states[0].half(), positive_image=positive.image_mask[0],
                negative=negative.hidden_states[0].half(), negative_image=negative.image_mask[0],
            ))
        if progress is not None:
            progress(len(chunk))
    return out

"""Stage 0a: a small VAE trained for reconstruction on the training images.

The VAE bounds everything after it: if a mark or a stripe does not survive encode -> decode, no
transformer can reproduce it. So the loss leans on the subject (mask-weighted) and the report is
PSNR on the subject's pixels.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import StageProgress
from .loop import LoopSettings, run_steps


@dataclass
class VaeConfig:
    steps: int
    batch_size: int = 32
    learning_rate: float = 1e-3
    kl_weight: float = 1e-6
    subject_weight: float = 3.0
    checkpoint_every: int = 250
    warmup_steps: int = 100
    log_every: int = 50
    seed: int = 0


def build_vae(latent_channels: int = 8, channels=(16, 32, 64)):
    """An ``AutoencoderKL`` with ``len(channels) - 1`` downsamplings (64 px -> 16 x 16 latents by default)."""
    from diffusers import AutoencoderKL

    blocks = len(channels)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * blocks,
                         up_block_types=("UpDecoderBlock2D",) * blocks, block_out_channels=tuple(channels),
                         layers_per_block=1, latent_channels=latent_channels, norm_num_groups=8)


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [-1, 1]."""
    return images.permute(0, 3, 1, 2).float() / 127.5 - 1


def train_vae(vae, images: torch.Tensor, masks: torch.Tensor, config: VaeConfig, folder, on_log=None) -> dict:
    """Reconstruction + a tiny KL term, subject pixels weighted ``1 + subject_weight``."""
    from accelerate import Accelerator

    progress = StageProgress(folder)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.learning_rate, weight_decay=0.0)
    prepared, optimizer = accelerator.prepare(vae, optimizer)

    def step_loss(generator: torch.Generator) -> torch.Tensor:
        picks = torch.randint(len(images), (config.batch_size,), generator=generator)
        pixels, weight = to_pixels(images[picks]), 1 + config.subject_weight * masks[picks].float()[:, None]
        posterior = prepared.encode(pixels).latent_dist
        reconstruction = prepared.decode(posterior.sample(generator=generator)).sample
        error = (reconstruction - pixels).abs() + (reconstruction - pixels).pow(2)
        return (error * weight).mean() / weight.mean() + config.kl_weight * posterior.kl().mean()

    prepared.train()
    settings = LoopSettings("vae", config.steps, config.learning_rate, config.warmup_steps, config.log_every,
                            config.checkpoint_every, config.seed, clip_norm=None)
    summary = run_steps(settings, accelerator, optimizer, progress, step_loss, on_log)
    accelerator.unwrap_model(prepared).eval().requires_grad_(False)
    return summary

@torch.no_grad()
def calibrate(vae, images: torch.Tensor) -> None:
    """Set ``shift_factor``/``scaling_factor`` so that latents of these images have mean 0 and std 1."""
    latents = torch.cat([vae.encode(to_pixels(chunk)).latent_dist.mode() for chunk in images.split(64)])
    vae.register_to_config(shift_factor=float(latents.mean()), scaling_factor=float(1 / latents.std()))


@torch.no_grad()
def reconstruction_psnr(vae, images: torch.Tensor, masks: torch.Tensor) -> dict:
    """PSNR (dB, images in [-1, 1]) over whole images and over the subject's pixels only."""
    whole, subject = [], []
    for chunk, mask in zip(images.split(64), masks.split(64), strict=True):
        pixels = to_pixels(chunk)
        error = (vae.decode(vae.encode(pixels).latent_dist.mode()).sample.clamp(-1, 1) - pixels).pow(2)
        whole.append(error.mean(dim=(1, 2, 3)))
        m = mask[:, None].float().expand_as(error)
        has_subject = m.sum(dim=(1, 2, 3)) > 0
        subject.append(((error * m).sum(dim=(1, 2, 3)) / m.sum(dim=(1, 2, 3)).clamp(min=1))[has_subject])
    return {"psnr": float((10 * torch.log10(4 / torch.cat(whole))).mean()),
            "subject_psnr": float((10 * torch.log10(4 / torch.cat(subject))).mean())}


def images_and_masks(records: list[dict], size: int, references: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Every target with its mask, then (``references``) every reference with an empty mask."""
    from PIL import Image

    pairs = [(r["output_image"], r.get("output_mask")) for r in records]
    if references:
        pairs += [(p, None) for r in records for p in r["input_images"]]
    images, masks = [], []
    for path, mask_path in pairs:
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGB").resize((size, size))))
        if mask_path:
            with Image.open(mask_path) as mask:
                masks.append(np.asarray(mask.convert("L").resize((size, size))) > 127)
        else:
            masks.append(np.zeros((size, size), dtype=bool))
    return torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(masks))


def vae_speed_probe(vae, size: int = 64, batch: int = 32) -> float:
    """Seconds per training step, measured (used to size the demo recipe)."""
    pixels = torch.rand(batch, 3, size, size) * 2 - 1
    optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-4)
    start = time.perf_counter()
    for _ in range(3):
        loss = F.mse_loss(vae(pixels).sample, pixels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / 3

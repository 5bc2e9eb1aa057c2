"""The Qwen-Image-Edit-Plus family: diffusers' QwenImageTransformer2DModel and AutoencoderKLQwenImage.

A plain 2-D ``AutoencoderKL`` may stand in for the Qwen-Image VAE (it trains far faster on a CPU, which
the demo model needs); the adapter hides which: latents always travel as (B, C, 1, h, w).

Packing, dimensions and the noise schedule are diffusers' own helpers, called rather than re-written,
so that with an identity connector and joint stages we match ``QwenImageEditPlusPipeline`` exactly.

Tensors for the VAE go to the device it computes on (``execution_device``), not to ``vae.device``: under an
offload mode its weights wait on the CPU until a hook moves them, and ``encode``/``decode`` move no inputs.
"""
from __future__ import annotations

import numpy as np
import torch
from diffusers.image_processor import VaeImageProcessor
from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus import (
    QwenImageEditPlusPipeline,
    calculate_dimensions,
    calculate_shift,
    retrieve_timesteps,
)
from PIL import Image

from .base import BackboneAdapter, Conditioning, ReferenceTokens
from .preview import LatentPreviewProjection
from .reference_bias import reference_weight as reference_weight_of

_pack = QwenImageEditPlusPipeline._pack_latents
_unpack = QwenImageEditPlusPipeline._unpack_latents


class QwenImageAdapter(BackboneAdapter):
    # References Qwen-Image-Edit-2509 is made for (its model card: 1 to 3 input images); the window caps drops
    # at this (``app/model/reference_limits``). Beyond it the transformer's sequence outgrows what was trained.
    max_references = 3

    def __init__(self, transformer, vae, preview_projection: LatentPreviewProjection | None = None):
        self.transformer = transformer
        self.vae = vae
        self.preview_projection = preview_projection
        self.preview_fitter = fit_preview_projection  # (adapter) -> map; a loaded base model's caches its fit
        self.video_vae = hasattr(vae, "temperal_downsample")  # AutoencoderKLQwenImage, frames axis
        if self.video_vae:
            self.vae_scale_factor = 2 ** len(vae.temperal_downsample)
            self.latent_channels = vae.config.z_dim
        else:
            self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
            self.latent_channels = vae.config.latent_channels
        self.size_multiple = self.vae_scale_factor * 2  # VAE downsampling, then 2x2 patch packing
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.size_multiple)

    # -- references ---------------------------------------------------------------------------------
    def condition_image(self, image: Image.Image, max_area: int) -> Image.Image:
        width, height = calculate_dimensions(max_area, image.width / image.height)
        return self.image_processor.resize(image, height, width)

    @torch.no_grad()
    def normalised_latents(self, images: list[Image.Image], height: int, width: int) -> torch.Tensor:
        """Images resized to ``height`` x ``width`` -> normalised VAE latents (B, C, 1, h, w)."""
        pixels = torch.stack([self.image_processor.preprocess(img, height, width)[0] for img in images])
        return self._normalise(self.vae_encode(pixels))

    def pack(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, 1, h, w) -> packed tokens (B, h/2 * w/2, C * 4)."""
        batch, channels, _, rows, cols = latents.shape
        return _pack(latents, batch, channels, rows, cols)

    @torch.no_grad()
    def encode_references(self, images: list[Image.Image], max_area: int) -> ReferenceTokens:
        tokens, grids = [], []
        for image in images:
            width, height = calculate_dimensions(max_area, image.width / image.height)
            latents = self.normalised_latents([image], height, width)
            tokens.append(self.pack(latents))
            grids.append((1, latents.shape[-2] // 2, latents.shape[-1] // 2))
        return ReferenceTokens(torch.cat(tokens, dim=1).to(self.transformer.dtype), grids)

    # -- denoising ----------------------------------------------------------------------------------
    def latent_grid(self, height: int, width: int) -> tuple[int, int]:
        return 2 * (height // self.size_multiple), 2 * (width // self.size_multiple)

    def prepare_latents(self, batch, height, width, generator, dtype, device):
        from diffusers.utils.torch_utils import randn_tensor

        rows, cols = self.latent_grid(height, width)
        noise = randn_tensor((batch, 1, self.latent_channels, rows, cols), generator=generator, device=device,
                             dtype=dtype)
        return _pack(noise, batch, self.latent_channels, rows, cols)

    def _shift_mu(self, scheduler, height, width) -> float:
        rows, cols = self.latent_grid(height, width)
        config = scheduler.config
        return calculate_shift((rows // 2) * (cols // 2), config.get("base_image_seq_len", 256),
                               config.get("max_image_seq_len", 4096), config.get("base_shift", 0.5),
                               config.get("max_shift", 1.15))

    def set_timesteps(self, scheduler, num_steps, height, width, device):
        sigmas = np.linspace(1.0, 1 / num_steps, num_steps)
        return retrieve_timesteps(scheduler, num_steps, device, sigmas=sigmas,
                                  mu=self._shift_mu(scheduler, height, width))[0]

    def shift_noise_levels(self, scheduler, t: torch.Tensor, height, width) -> torch.Tensor:
        """Noise levels ``t`` in [0, 1] bent by the shift ``set_timesteps`` makes the scheduler apply at this size
        (resolution-dependent for Qwen-Image, none for the demo's scheduler): uniform ``t`` in, a training
        distribution with inference's share of steps per noise range out. A ``shift_terminal`` stretch, which
        only moves the last steps, is left out."""
        config = scheduler.config
        if config.get("use_dynamic_shifting"):
            return scheduler.time_shift(self._shift_mu(scheduler, height, width), 1.0, t)
        shift = config.get("shift", 1.0)
        return shift * t / (1 + (shift - 1) * t)

    def predict(self, latents, t, conditioning: Conditioning, references, height, width, reference_weight=1.0):
        rows, cols = self.latent_grid(height, width)
        shapes = [(1, rows // 2, cols // 2), *(references.grids if references is not None else [])]
        sequence = latents if references is None else torch.cat([latents, references.tokens], dim=1)
        n_refs = 0 if references is None else references.tokens.shape[1]
        with reference_weight_of(self.transformer, n_refs, reference_weight):
            velocity = self.transformer(
                hidden_states=sequence,
                timestep=t,
                guidance=None,
                encoder_hidden_states=conditioning.embeds,
                encoder_hidden_states_mask=conditioning.mask,
                img_shapes=[shapes] * latents.shape[0],
                return_dict=False,
            )[0]
        return velocity[:, : latents.shape[1]]

    # -- the VAE, either kind -------------------------------------------------------------------------
    def vae_encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> raw latents (B, C, 1, h, w), the distribution's mode."""
        pixels = pixels.to(execution_device(self.vae), self.vae.dtype)
        if self.video_vae:
            return self.vae.encode(pixels.unsqueeze(2)).latent_dist.mode()
        return self.vae.encode(pixels).latent_dist.mode().unsqueeze(2)

    def vae_decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Raw latents (B, C, 1, h, w) -> (B, 3, H, W)."""
        if self.video_vae:
            return self.vae.decode(latents, return_dict=False)[0][:, :, 0]
        return self.vae.decode(latents[:, :, 0], return_dict=False)[0]

    def _stats(self, like: torch.Tensor):
        """Per-channel (mean, std) that normalise raw latents, shaped (1, C, 1, 1, 1)."""
        shape = (1, self.latent_channels, 1, 1, 1)
        config = self.vae.config
        if self.video_vae:
            mean, std = torch.tensor(config.latents_mean), torch.tensor(config.latents_std)
        else:  # AutoencoderKL's convention: (z - shift_factor) * scaling_factor
            mean = torch.full((self.latent_channels,), float(config.shift_factor or 0.0))
            std = torch.full((self.latent_channels,), 1.0 / config.scaling_factor)
        return mean.view(shape).to(like.device, like.dtype), std.view(shape).to(like.device, like.dtype)

    def _normalise(self, latents):
        mean, std = self._stats(latents)
        return (latents - mean) / std

    def unpack(self, latents, height, width):
        """Packed (B, N, C*4) -> (B, C, 1, h, w) normalised latents."""
        return _unpack(latents, height, width, self.vae_scale_factor)

    @torch.no_grad()
    def decode(self, latents, height, width):
        latents = self.unpack(latents, height, width).to(execution_device(self.vae), self.vae.dtype)
        mean, std = self._stats(latents)
        latents = latents / (1.0 / std) + mean  # the same operations as diffusers, for bit parity
        return self.vae_decode(latents)

    @torch.no_grad()
    def preview(self, latents, height, width):
        if self.preview_projection is None:  # a fitted map has no offload hooks: it lives where the VAE computes
            self.preview_projection = self.preview_fitter(self).to(execution_device(self.vae))
        return self.preview_projection(self.unpack(latents, height, width)[:, :, 0])


@torch.no_grad()
def fit_preview_projection(adapter: QwenImageAdapter, images: list[Image.Image] | None = None,
                           samples: int = 8, grid: int = 16, seed: int = 0) -> LatentPreviewProjection:
    """Fit the preview map against the VAE's decoder: on encodings of ``images`` when given (best: the
    model's own domain), else on ``samples`` random latents of a ``grid`` x ``grid`` latent size."""
    vae = adapter.vae
    if images:
        size = grid * adapter.vae_scale_factor
        latents = adapter.normalised_latents(images, size, size)
    else:
        generator = torch.Generator().manual_seed(seed)
        latents = torch.randn(samples, adapter.latent_channels, 1, grid, grid, generator=generator)
        latents = latents.to(execution_device(vae), vae.dtype)
    mean, std = adapter._stats(latents)
    decoded = adapter.vae_decode(latents * std + mean).clamp(-1, 1)
    projection = LatentPreviewProjection(latent_channels=adapter.latent_channels)
    projection.fit(latents[:, :, 0].float().cpu(), decoded.float().cpu())
    return projection.to(execution_device(vae))


def execution_device(module: torch.nn.Module) -> torch.device:
    """Where ``module`` computes: its accelerate hook's device (model offload, device maps), else its diffusers
    group-offloading onload device, else where its weights are."""
    from diffusers.hooks.group_offloading import _get_group_onload_device

    hook = getattr(module, "_hf_hook", None)
    for part in getattr(hook, "hooks", (hook,)):
        device = getattr(part, "execution_device", None)
        if device is not None:
            return torch.device(device)
    try:
        return _get_group_onload_device(module)  # what DiffusionPipeline._execution_device asks too
    except ValueError:
        return module.device

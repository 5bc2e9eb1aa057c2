"""Step previews for almost nothing: a linear latent -> RGB map fitted against the VAE's own decoder.

Decoding every step with the real VAE would cost as much as a denoising step; one (C -> 3) linear map
per latent pixel costs nothing. It is fitted once by least squares (pixels average-pooled to the latent
grid against the latents) and saved with the model as a pipeline component.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class LatentPreviewProjection(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, latent_channels: int = 16):
        super().__init__()
        self.linear = nn.Linear(latent_channels, 3)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) normalised latents -> (B, 3, h, w) RGB in [-1, 1]."""
        rgb = self.linear(latents.to(self.dtype).movedim(1, -1)).movedim(-1, 1)
        return rgb.clamp(-1, 1)

    @torch.no_grad()
    def fit(self, latents: torch.Tensor, images: torch.Tensor) -> float:
        """Least-squares fit of ``images`` (B, 3, H, W) in [-1, 1] from ``latents`` (B, C, h, w).

        Returns the fit's RMSE on the pooled pixels, so callers can report how good previews are."""
        pooled = F.adaptive_avg_pool2d(images.float(), latents.shape[-2:])
        x = latents.float().movedim(1, -1).reshape(-1, latents.shape[1])
        x = torch.cat([x, torch.ones(x.shape[0], 1)], dim=1)
        y = pooled.movedim(1, -1).reshape(-1, 3)
        solution = torch.linalg.lstsq(x, y).solution  # (C + 1, 3)
        self.linear.weight.copy_(solution[:-1].T)
        self.linear.bias.copy_(solution[-1])
        return float((x @ solution - y).pow(2).mean().sqrt())

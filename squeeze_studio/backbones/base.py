"""The backbone adapter interface (docs/DESIGN.md 3).

An adapter hides how a diffusion family VAE-encodes and packs references, assigns positions to target
and reference tokens, calls its transformer, unpacks and decodes latents, and previews them cheaply.
The pipeline talks to this interface only.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from PIL import Image


@dataclass
class Conditioning:
    """The transformer's context: (B, T, C) embeddings and a (B, T) mask (``None`` = all real)."""

    embeds: torch.Tensor
    mask: torch.Tensor | None

    def repeat(self, n: int) -> Conditioning:
        mask = None if self.mask is None else self.mask.repeat_interleave(n, dim=0)
        return Conditioning(self.embeds.repeat_interleave(n, dim=0), mask)


@dataclass
class ReferenceTokens:
    """Packed VAE latents of every reference, concatenated: (B, N_ref, C), and each one's latent grid."""

    tokens: torch.Tensor
    grids: list[tuple[int, int, int]]  # (frames, rows, cols) per reference, in packed-token units

    def repeat(self, n: int) -> ReferenceTokens:
        return ReferenceTokens(self.tokens.repeat_interleave(n, dim=0), self.grids)


class BackboneAdapter(ABC):
    #: Output height and width must be multiples of this.
    size_multiple: int

    @abstractmethod
    def encode_references(self, images: list[Image.Image], max_area: int) -> ReferenceTokens:
        """VAE identity tokens for any number of references (each resized to about ``max_area`` pixels)."""

    @abstractmethod
    def prepare_latents(self, batch: int, height: int, width: int, generator, dtype, device) -> torch.Tensor:
        """Packed starting noise (B, N, C)."""

    @abstractmethod
    def predict(self, latents: torch.Tensor, t: torch.Tensor, conditioning: Conditioning,
                references: ReferenceTokens | None, height: int, width: int,
                reference_weight: float = 1.0) -> torch.Tensor:
        """The transformer's velocity for the target tokens only, (B, N, C). ``t`` in [0, 1], shape (B,).

        With ``references=None`` the reference tokens are left out of the sequence entirely; with
        ``reference_weight`` < 1 they are in it but count less in attention (the smooth stage ramp)."""

    @abstractmethod
    def decode(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Packed latents -> images (B, 3, H, W) in [-1, 1]."""

    @abstractmethod
    def preview(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Packed latents -> a cheap (B, 3, h, w) RGB approximation in [-1, 1] at latent resolution."""

    @abstractmethod
    def set_timesteps(self, scheduler, num_steps: int, height: int, width: int, device) -> torch.Tensor:
        """Configure ``scheduler`` for this family's noise schedule; returns its timesteps."""

    @abstractmethod
    def condition_image(self, image: Image.Image, max_area: int) -> Image.Image:
        """A reference resized the way this family shows references to its MLLM."""

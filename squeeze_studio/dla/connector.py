"""The connector between the MLLM's layer stack and the diffusion transformer's context (docs/DESIGN.md 2.2-2.3).

Modes:
- ``last_layer``: the last hidden state only (what Qwen-Image-Edit does), then the output projection.
- ``lap``: one Layerwise Attention Pooling over every token.
- ``dla``: Dual Layer Aggregation, one LAP for text-token positions and one for image-token positions.

How DLA fuses its two LAPs is not published; ``fusion`` chooses:
- ``interleave`` (default): each token is pooled by the LAP of its own type and stays in place, so the
  conditioning keeps the MLLM's token order. Only this fusion can reproduce the base model exactly.
- ``concat``: the text tokens' outputs, then the image tokens' outputs, as one sequence.

With ``identity_init`` (and ``out_dim == hidden_size``) the output equals the last layer's hidden states
exactly, whatever the mode: an untrained connector reproduces the base model. Without it, the pools start
as the plain average of the layers, for a model trained from scratch.

``normalize_layers`` puts a LayerNorm in front of the pools, so every layer arrives on one scale. The raw
stack of an MLLM is far from that (a random tiny Qwen2.5-VL: embeddings of norm 0.16, final normed layer
of norm 8, whose tokens share two thirds of their norm), and without it the early layers, which keep
each token's identity best, are invisible to a freshly initialised pool.
"""
from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .lap import LayerwiseAttentionPooling

CONNECTOR_MODES = ("last_layer", "lap", "dla")
FUSIONS = ("interleave", "concat")


class LayerConnector(ModelMixin, ConfigMixin):
    """(B, L, T, d) all-layer MLLM states + token-type masks -> (B, T, out_dim) transformer context.

    Saved with ``save_pretrained`` as safetensors plus a JSON config.
    """

    @register_to_config
    def __init__(
        self,
        mode: str = "dla",
        num_layers: int = 29,
        hidden_size: int = 3584,
        out_dim: int | None = None,
        num_blocks: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        fusion: str = "interleave",
        identity_init: bool = True,
        normalize_layers: bool = False,
    ):
        super().__init__()
        if mode not in CONNECTOR_MODES:
            raise ValueError(f"connector mode must be one of {CONNECTOR_MODES} (got {mode!r})")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS} (got {fusion!r})")
        out_dim = out_dim or hidden_size
        if identity_init and out_dim != hidden_size:
            raise ValueError("identity_init needs out_dim == hidden_size")
        if identity_init and normalize_layers:
            raise ValueError("identity_init reproduces the raw last layer; normalize_layers would change it")
        self.layer_norm = nn.LayerNorm(hidden_size) if normalize_layers else None
        lap_args = (num_layers, hidden_size, num_blocks, num_heads, mlp_ratio)
        self.text_lap = LayerwiseAttentionPooling(*lap_args) if mode != "last_layer" else None
        self.image_lap = LayerwiseAttentionPooling(*lap_args) if mode == "dla" else None
        self.proj = nn.Linear(hidden_size, out_dim)
        if identity_init:
            self.reset_to_identity()
        else:
            for lap in (self.text_lap, self.image_lap):
                if lap is not None:
                    lap.average_init()

    def reset_to_identity(self) -> None:
        for lap in (self.text_lap, self.image_lap):
            if lap is not None:
                lap.identity_init()
        nn.init.eye_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, hidden_states: torch.Tensor, text_mask: torch.Tensor, image_mask: torch.Tensor):
        """Returns ``(context (B, T', out_dim), context_mask (B, T'))``; T' == T except for concat fusion."""
        hidden_states = hidden_states.to(self.dtype)
        if self.layer_norm is not None:
            hidden_states = self.layer_norm(hidden_states)
        valid = text_mask | image_mask
        if self.config.mode == "last_layer":
            pooled, mask = hidden_states[:, -1], valid
        elif self.config.mode == "lap":
            pooled, mask = self._pool(self.text_lap, hidden_states, valid), valid
        elif self.config.fusion == "interleave":
            pooled = self._pool(self.text_lap, hidden_states, text_mask)
            pooled = pooled + self._pool(self.image_lap, hidden_states, image_mask)
            mask = valid
        else:
            pooled, mask = self._concat(hidden_states, text_mask, image_mask)
        return self.proj(pooled), mask.long()

    @staticmethod
    def _pool(lap: LayerwiseAttentionPooling, hidden_states: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        """Run ``lap`` on the tokens selected by ``where`` only; zeros elsewhere. (B, L, T, d) -> (B, T, d)."""
        stacks = hidden_states.permute(0, 2, 1, 3)[where]  # (N, L, d)
        out = hidden_states.new_zeros(hidden_states.shape[0], hidden_states.shape[2], hidden_states.shape[3])
        out[where] = lap(stacks).to(out.dtype)  # bf16 under autocast, into the stack's dtype
        return out

    def _concat(self, hidden_states, text_mask, image_mask):
        """Text tokens first, image tokens after, each sample left-aligned and right-padded."""
        text = self._pool(self.text_lap, hidden_states, text_mask)
        image = self._pool(self.image_lap, hidden_states, image_mask)
        rows = [torch.cat([text[b][text_mask[b]], image[b][image_mask[b]]]) for b in range(text.shape[0])]
        length = max(row.shape[0] for row in rows)
        pooled = text.new_zeros(len(rows), length, text.shape[-1])
        mask = torch.zeros(len(rows), length, dtype=torch.bool, device=text.device)
        for b, row in enumerate(rows):
            pooled[b, : row.shape[0]] = row
            mask[b, : row.shape[0]] = True
        return pooled, mask

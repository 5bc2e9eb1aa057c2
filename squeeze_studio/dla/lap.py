"""Layerwise Attention Pooling (LAP, from UniFusion, arXiv 2510.12789).

For each token, the stack of its per-layer states (L x d) is a short sequence: pre-norm transformer
blocks attend across the layer axis, then a linear map over the layer axis collapses it to one vector.
"""
from __future__ import annotations

import torch
from torch import nn


class LayerAxisBlock(nn.Module):
    """Pre-norm self-attention + MLP over the layer axis of one token's stack."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp_norm = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, L, d) -> (N, L, d)."""
        h = self.attn_norm(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.mlp_norm(x))

    def identity_init(self) -> None:
        """Zero both residual branches' output layers, so the block returns its input exactly."""
        for layer in (self.attn.out_proj, self.mlp[-1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)


class LayerwiseAttentionPooling(nn.Module):
    """(N, L, d) stacks of per-layer states -> (N, d), one vector per token."""

    def __init__(self, num_layers: int, dim: int, num_blocks: int = 2, num_heads: int = 4, mlp_ratio: float = 2.0):
        super().__init__()
        self.layer_embedding = nn.Parameter(torch.zeros(num_layers, dim))
        self.blocks = nn.ModuleList(LayerAxisBlock(dim, num_heads, mlp_ratio) for _ in range(num_blocks))
        self.collapse = nn.Linear(num_layers, 1)

    def forward(self, stack: torch.Tensor) -> torch.Tensor:
        x = stack + self.layer_embedding
        for block in self.blocks:
            x = block(x)
        return self.collapse(x.transpose(1, 2)).squeeze(-1)

    def identity_init(self) -> None:
        """Output == the last layer's state: identity blocks and a one-hot collapse on the last layer."""
        self._collapse_init(torch.nn.functional.one_hot(torch.tensor(self.collapse.in_features - 1),
                                                        self.collapse.in_features).float())

    def average_init(self) -> None:
        """Output == the mean of the layers' states: identity blocks and a uniform collapse."""
        self._collapse_init(torch.full((self.collapse.in_features,), 1.0 / self.collapse.in_features))

    def _collapse_init(self, weights: torch.Tensor) -> None:
        nn.init.zeros_(self.layer_embedding)
        for block in self.blocks:
            block.identity_init()
        nn.init.zeros_(self.collapse.bias)
        with torch.no_grad():
            self.collapse.weight.copy_(weights[None])

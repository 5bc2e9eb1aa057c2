"""LoRA files with the key layouts people's files have, for any Qwen-Image transformer (random weights).

``lora_tensors(transformer, "kohya")``: ComfyUI/kohya (``lora_unet_<module_with_underscores>.lora_down/lora_up.weight``
and ``.alpha``); ``"lightx2v"``: the Lightning files' (bare ``transformer_blocks.N.<module>.lora_down/lora_up.weight``
and ``.alpha``); ``"peft"``: diffusers' naming as ComfyUI saves it (``diffusion_model.<module>.lora_A/lora_B.weight``).
Every block's linear layers are targeted, as the Lightning LoRAs do (``BLOCK_LAYERS``).
"""
from __future__ import annotations

import torch

BLOCK_LAYERS = ("attn.to_q", "attn.to_k", "attn.to_v", "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj",
                "attn.to_out.0", "attn.to_add_out", "img_mod.1", "txt_mod.1", "img_mlp.net.0.proj", "img_mlp.net.2",
                "txt_mlp.net.0.proj", "txt_mlp.net.2")


def block_layers(transformer, blocks=None) -> list[tuple[str, int, int]]:
    """(module name, in features, out features) of every targeted linear layer of ``blocks`` (default: all)."""
    modules = dict(transformer.named_modules())
    blocks = range(len(transformer.transformer_blocks)) if blocks is None else blocks
    found = []
    for i in blocks:
        for name in BLOCK_LAYERS:
            layer = modules[f"transformer_blocks.{i}.{name}"]
            layer = getattr(layer, "base_layer", layer)
            found.append((f"transformer_blocks.{i}.{name}", layer.in_features, layer.out_features))
    return found


def lora_tensors(transformer, layout: str = "lightx2v", rank: int = 16, alpha: float | None = None, seed: int = 0,
                 scale: float = 1.0, blocks=None, dtype=torch.float32) -> dict[str, torch.Tensor]:
    """A random LoRA over ``transformer``'s block layers in ``layout`` ("kohya", "lightx2v" or "peft")."""
    g = torch.Generator().manual_seed(seed)
    alpha = float(rank) if alpha is None else alpha
    out = {}
    for name, fan_in, fan_out in block_layers(transformer, blocks):
        down = (torch.randn(rank, fan_in, generator=g) * scale / fan_in ** 0.5).to(dtype)
        up = (torch.randn(fan_out, rank, generator=g) * scale / rank ** 0.5).to(dtype)
        if layout == "peft":
            out[f"diffusion_model.{name}.lora_A.weight"], out[f"diffusion_model.{name}.lora_B.weight"] = down, up
            continue
        key = "lora_unet_" + name.replace(".", "_") if layout == "kohya" else name
        out[f"{key}.lora_down.weight"], out[f"{key}.lora_up.weight"] = down, up
        out[f"{key}.alpha"] = torch.tensor(alpha)
    return out

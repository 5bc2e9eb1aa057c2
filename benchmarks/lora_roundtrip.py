"""How far a fused LoRA taken out again leaves the base weights: fuse / unfuse cycles of a rank-16 LoRA on one
Qwen-Image transformer block (random weights, head size 128), switching its weight between cycles as the window does,
in bfloat16 (the real model's dtype) or float32. Prints, after 1, 5 and 20 cycles, the share of base weights no longer
bit-equal to the originals and the largest change, as a fraction of its layer's mean weight magnitude.

    python benchmarks/lora_roundtrip.py                        # bf16, 1024 wide, LoRA delta ~2 % of the weights
    python benchmarks/lora_roundtrip.py --dtype float32 --scale 1.0

``--scale`` multiplies the LoRA's A and B (``testing.loras.lora_tensors``): 0.1 gives a delta of ~2 % of the weights'
mean magnitude (the printed ratio), 1.0 one larger than the weights (a stress case).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from squeeze_studio.pipeline import SqueezePipeline  # noqa: E402
from squeeze_studio.pipeline.loras import check_lora_file, read_lora  # noqa: E402
from squeeze_studio.testing.loras import lora_tensors  # noqa: E402

WEIGHTS = (1.0, 0.8, -0.5, 0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    args = parser.parse_args()
    from diffusers import QwenImageTransformer2DModel
    from peft.tuners.tuners_utils import BaseTunerLayer

    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    block = QwenImageTransformer2DModel(patch_size=2, in_channels=64, out_channels=16, num_layers=1,
                                        attention_head_dim=128, num_attention_heads=args.width // 128,
                                        joint_attention_dim=args.width, axes_dims_rope=(16, 56, 56)).to(dtype).eval()
    path = Path(tempfile.mkdtemp(prefix="lora-roundtrip-")) / "rank16.safetensors"
    save_file(lora_tensors(block, "lightx2v", rank=16, scale=args.scale, dtype=dtype), str(path))
    SqueezePipeline.load_lora_into_transformer(read_lora(check_lora_file(path), SqueezePipeline), block,
                                               adapter_name="lora")
    layers = [m for m in block.modules() if isinstance(m, BaseTunerLayer)]
    originals = [layer.get_base_layer().weight.detach().clone() for layer in layers]
    delta = sum(float(layer.get_delta_weight("lora").detach().float().abs().mean() / w.float().abs().mean())
                for layer, w in zip(layers, originals, strict=True)) / len(layers)
    print(f"{args.dtype}, {args.width} wide, {len(layers)} layers; LoRA delta / weight (mean magnitude) {delta:.3f}")
    for cycle in range(1, 21):
        block.set_adapters(["lora"], [WEIGHTS[cycle % len(WEIGHTS)]])
        block.fuse_lora(adapter_names=["lora"])
        block.unfuse_lora()
        if cycle in (1, 5, 20):
            changed = total = 0
            worst = 0.0
            for layer, original in zip(layers, originals, strict=True):
                now = layer.get_base_layer().weight.detach()
                changed += int((now != original).sum())
                total += original.numel()
                scale = original.float().abs().mean()
                worst = max(worst, float((now.float() - original.float()).abs().max() / scale))
            print(f"after {cycle:2d} fuse/unfuse cycles: {changed / total:.2%} of the base weights changed, "
                  f"the largest by {worst:.2%} of the layer's mean weight")


if __name__ == "__main__":
    main()

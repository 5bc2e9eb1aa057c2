"""The cost of one community LoRA: a rank-16 LoRA at weight 1, fused into the weights (as ``SqueezePipeline.set_loras``
applies it) and unfused (peft beside the weights, as before fusing), against none, measured side by side in one run.
Imported by ``bench_engine.py``; runnable alone:

    python benchmarks/bench_lora.py --repeats 7

Two settings: the tiny pipeline of the other engine benchmarks (whole call; its 32-wide layers make a rank-16 LoRA
half again as wide, so this is the worst case) and one Qwen-Image transformer block at a real head size (128) and
``--width`` (default 3072, the real model's; 24 heads) on the token count of a 256 x 256 image with 2 references.
Times are one torch thread's CPU time (``_interleaved``) of the generation (or forward) alone: switching between the
settings (``set_loras``, fusing, unfusing) happens before the clock starts, as the engine switches only when the list
changes. In the pipeline setting "none" is the state after ``set_loras([])``: the adapter stays loaded, unfused and
switched off, as after unticking it in the window; "unfused" is ``set_loras([lora])`` then ``pipe.unfuse_lora()``.
"""
from __future__ import annotations

import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from squeeze_studio.pipeline import LoraSpec, SqueezePipeline  # noqa: E402
from squeeze_studio.pipeline.loras import check_lora_file, fused_adapters, read_lora  # noqa: E402
from squeeze_studio.testing.loras import lora_tensors  # noqa: E402

RANK = 16


def _interleaved(fns: dict, repeats: int, setups: dict | None = None) -> dict[str, float]:
    """Median CPU seconds of each function's thread, run alternately on one torch thread: other jobs on a shared
    machine slow the wall clock by several times, and this thread's CPU time far less. ``setups[name]`` runs before
    each timed call of ``fns[name]``, untimed."""
    setups = setups or {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, fn in fns.items():
            setups.get(name, lambda: None)()
            fn()  # warm-up
        samples = {name: [] for name in fns}
        for _ in range(repeats):
            for name, fn in fns.items():
                setups.get(name, lambda: None)()
                start = time.thread_time()
                fn()
                samples[name].append(time.thread_time() - start)
    finally:
        torch.set_num_threads(threads)
    return {name: statistics.median(values) for name, values in samples.items()}


def bench_lora_pipeline(pipe, refs, size, steps, repeats, prompt) -> dict:
    """Whole call of ``pipe`` with one rank-16 LoRA (lightx2v layout) at weight 1, fused and unfused, against the
    same call without."""
    folder = Path(tempfile.mkdtemp(prefix="bench-lora-"))
    path = folder / "rank16.safetensors"
    save_file(lora_tensors(pipe.transformer, "lightx2v", rank=RANK), str(path))
    common = dict(image=refs, prompt=prompt, num_inference_steps=steps, height=size, width=size, output_type="latent")

    def call():
        pipe(**common, generator=torch.Generator().manual_seed(0))

    def unfused():
        pipe.set_loras([LoraSpec(str(path), 1.0)])
        pipe.unfuse_lora()

    setups = {"fused": lambda: pipe.set_loras([LoraSpec(str(path), 1.0)]), "unfused": unfused,
              "none": lambda: pipe.set_loras([])}
    medians = _interleaved({name: call for name in setups}, repeats, setups)
    pipe.set_loras([])
    return _ratios(medians)


def _ratios(medians: dict) -> dict:
    none = medians["none"]
    return {**medians, "ratio": medians["fused"] / none, "unfused_ratio": medians["unfused"] / none,
            "target": "<= 1.02"}


def bench_lora_block(repeats: int, width: int = 3072, size: int = 256, refs: int = 2, text: int = 64) -> dict:
    """One transformer block at head size 128 and ``width``: forward with a rank-16 LoRA on every linear layer of
    the block (as the Lightning LoRAs are), fused and unfused, against an identical block without peft."""
    from diffusers import QwenImageTransformer2DModel

    torch.manual_seed(0)
    heads, z_dim = width // 128, 16
    base = QwenImageTransformer2DModel(patch_size=2, in_channels=z_dim * 4, out_channels=z_dim, num_layers=1,
                                       attention_head_dim=128, num_attention_heads=heads, joint_attention_dim=width,
                                       axes_dims_rope=(16, 56, 56)).eval()
    lora = copy.deepcopy(base)
    path = Path(tempfile.mkdtemp(prefix="bench-lora-")) / "rank16.safetensors"
    save_file(lora_tensors(lora, "lightx2v", rank=RANK), str(path))
    SqueezePipeline.load_lora_into_transformer(read_lora(check_lora_file(path), SqueezePipeline), lora,
                                               adapter_name="rank16")
    lora.set_adapters(["rank16"], [1.0])
    side = size // 16
    tokens = side * side * (1 + refs)
    inputs = dict(hidden_states=torch.randn(1, tokens, z_dim * 4), encoder_hidden_states=torch.randn(1, text, width),
                  encoder_hidden_states_mask=None, timestep=torch.tensor([0.5]), guidance=None,
                  img_shapes=[[(1, side, side)] * (1 + refs)], return_dict=False)

    @torch.no_grad()
    def run(model):
        return lambda: model(**inputs)

    def fuse():
        if not fused_adapters(lora):
            lora.fuse_lora(adapter_names=["rank16"])

    medians = _interleaved({"fused": run(lora), "unfused": run(lora), "none": run(base)}, repeats,
                           {"fused": fuse, "unfused": lora.unfuse_lora})
    return {**_ratios(medians), "width": width, "tokens": tokens + text}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--width", type=int, default=3072)
    args = parser.parse_args()
    print(bench_lora_block(args.repeats, args.width))

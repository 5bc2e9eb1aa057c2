"""The ``cache`` section of ``gpu_full_size.py``: the staged schedule at full size with each step cache mode and
with the transformer's blocks compiled, beside stock diffusers on the same components, in one process.

2 references, guidance 4, ``steps`` steps (28: the issue's target of <= 12 s per image on one H100/H200). Stock
diffusers runs both CFG streams at every step; the staged schedule (0.95 / 0.85) runs fewer passes, and the caches
skip some of those. Then 8 steps at guidance 1 with a Lightning-shaped LoRA (the lightx2v key layout over every
block, rank 64 and alpha 8 as the Lightning files have them; random weights), fused as ``set_loras`` applies it:
the few-step target of <= 5 s per image. Compilation goes last (it changes the transformer for good): its first
image compiles, the second shows the compiled speed, and their difference is the compile cost.
"""
from __future__ import annotations


def section_cache(ours, stock, refs: list, device: str, steps: int, size: int, timed_call) -> dict:
    """``ours``/``stock``: SqueezePipeline and QwenImageEditPlusPipeline over the same components; ``timed_call``
    is ``gpu_full_size``'s (end-to-end seconds, synchronised)."""
    from squeeze_studio.request import CACHE_MODES

    common = dict(image=refs, prompt="the toy upside down on a red background", height=size, width=size,
                  num_inference_steps=steps)
    timed_call(ours, device, **dict(common, num_inference_steps=2), guidance_scale=4.0)  # warm-up

    def staged(cache: str) -> dict:
        run = timed_call(ours, device, **common, guidance_scale=4.0, tau1=0.95, tau2=0.85, cache=cache)
        return {**run, "passes": f"{ours.step_cache.full_passes}/{ours.step_cache.passes}"}

    out = {"steps": steps, "stock": timed_call(stock, device, **common, true_cfg_scale=4.0, negative_prompt=" ")}
    for mode in CACHE_MODES:
        out[mode] = staged(mode)
    ours.set_step_cache("none")
    out["lightning"] = lightning(ours, common, device, timed_call)
    if device.startswith("cuda"):
        ours.compile_blocks()
        out["compile first"] = staged("none")
        out["compile next"] = staged("none")
        out["compile cost s"] = out["compile first"]["seconds"] - out["compile next"]["seconds"]
    for name in (*CACHE_MODES, "compile next"):
        if name in out:
            out[name]["/stock"] = out[name]["seconds"] / out["stock"]["seconds"]
    return out


def lightning(ours, common: dict, device: str, timed_call) -> dict:
    """8 staged steps at guidance 1 with a Lightning-shaped LoRA applied, then the LoRA taken off again."""
    import tempfile
    from pathlib import Path

    from safetensors.torch import save_file

    from squeeze_studio.pipeline.loras import LoraSpec
    from squeeze_studio.testing.loras import lora_tensors

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lightning-shaped.safetensors"
        save_file(lora_tensors(ours.transformer, "lightx2v", rank=64, alpha=8.0, scale=0.1), str(path))
        ours.set_loras([LoraSpec(str(path), 1.0)])
        try:
            run = timed_call(ours, device, **dict(common, num_inference_steps=8), guidance_scale=1.0, tau1=0.95,
                             tau2=0.85)
        finally:
            ours.set_loras([])
    return run


def rows(r: dict) -> list[str]:
    """Table rows for ``gpu_full_size.table``."""
    found = [f"| cache: stock diffusers, {r['steps']} steps, CFG at every step | {r['stock']['seconds']:.1f} s |"]
    for name in ("none", "first-block", "taylorseer", "compile next"):
        if name in r:
            passes = f", {r[name]['passes']} passes in full" if "passes" in r[name] else ""
            found.append(f"| cache: staged 0.95/0.85, {name} (target <= 12 s at 28 steps) | {r[name]['seconds']:.1f} s"
                         f" ({r[name]['/stock']:.2f}x stock{passes}) |")
    if "lightning" in r:
        found.append(f"| cache: staged, 8 steps, guidance 1, Lightning-shaped LoRA fused (target <= 5 s) | "
                     f"{r['lightning']['seconds']:.1f} s |")
    if "compile cost s" in r:
        found.append(f"| cache: first compiled image's extra time | {r['compile cost s']:.1f} s |")
    return found

"""Engine benchmarks: ratios measured side by side in one run (never absolute timings in tests).

    python benchmarks/bench_engine.py --out benchmarks/results

1. SqueezePipeline overhead against diffusers' QwenImageEditPlusPipeline on the same tiny components and
   settings (identity connector, MLLM + VAE at every step), cold: the encoding cache is cleared before
   every call, so both run their MLLM. Target ratio <= 1.03.
2. Time per denoising step, MLLM-only steps against joint steps with 2 references.
3. A 9-point tau sweep: how many times the MLLM runs (must be exactly once).
4. Step caching: each cache mode against none (``pipeline.step_cache``), whole call with the encoding cached, on the
   demo model (its 64 x 64, the staged schedule) and on the tiny stock model (full Qwen-Image-Edit architecture,
   random weights, run as itself: CFG at every step), with the passes each computed in full.
5. One rank-16 LoRA at weight 1, fused (as ``set_loras`` applies it) and unfused, against none: the tiny pipeline's
   whole call, and one transformer block at a real head size (``bench_lora.py``). Target ratio (fused) <= 1.02.

``--only lora`` (or any section names, comma-separated) runs just those sections and writes ``engine_<names>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from squeeze_studio.testing.tiny import build_tiny_pipeline  # noqa: E402

PROMPT = "the toy upside down on a red background"


def references(size: int, count: int = 2) -> list[Image.Image]:
    rng = np.random.RandomState(0)
    return [Image.fromarray(rng.randint(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(count)]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(fns: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each function, run alternately so machine load hits all of them alike."""
    for fn in fns.values():
        fn()  # warm-up
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(timed(fn))
    return {name: statistics.median(values) for name, values in samples.items()}


def diffusers_twin(pipe):
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus as edit_plus

    edit_plus.CONDITION_IMAGE_SIZE = pipe.config.condition_image_area
    edit_plus.VAE_IMAGE_SIZE = pipe.config.reference_image_area
    twin = edit_plus.QwenImageEditPlusPipeline(scheduler=pipe.scheduler, vae=pipe.vae, text_encoder=pipe.text_encoder,
                                               tokenizer=pipe.processor.tokenizer, processor=pipe.processor,
                                               transformer=pipe.transformer)
    twin.prompt_template_encode_start_idx = pipe.encoder.drop_index
    twin.set_progress_bar_config(disable=True)
    return twin


def bench_overhead(pipe, refs, size, steps, repeats):
    twin = diffusers_twin(pipe)
    common = dict(image=refs, prompt=PROMPT, num_inference_steps=steps, height=size, width=size, output_type="np")

    def ours():
        pipe.clear_encoding_cache()
        pipe(**common, tau1=1.0, tau2=0.0, guidance_scale=2.5, generator=torch.Generator().manual_seed(0))

    def theirs():
        twin(**common, true_cfg_scale=2.5, negative_prompt=" ", generator=torch.Generator().manual_seed(0))

    medians = interleaved({"squeeze": ours, "diffusers": theirs}, repeats)
    return {**medians, "ratio": medians["squeeze"] / medians["diffusers"], "target": "<= 1.03"}


def bench_stage_cost(pipe, refs, size, steps, repeats):
    """Seconds per denoising step (encoding cached, decoding excluded) for each stage kind."""

    def per_step(tau1, tau2):
        def run():
            stream = pipe.stream(image=refs, prompt=PROMPT, tau1=tau1, tau2=tau2, guidance_scale=2.5,
                                 num_inference_steps=steps, height=size, width=size, output_type="latent")
            for item in stream:
                if getattr(item, "step", 0) == 1:
                    start = time.perf_counter()  # after step 1: connector and setup excluded
            return start

        def timed_steps():
            t0 = run()
            return (time.perf_counter() - t0) / (steps - 1)

        return timed_steps

    pipe(image=refs, prompt=PROMPT, num_inference_steps=1, height=size, width=size)  # fill the cache
    samples = {"mllm_only": [], "joint": [], "vae_focused": []}
    settings = {"mllm_only": (0.0, 0.0), "joint": (1.0, 0.0), "vae_focused": (0.0001, 0.0001)}
    fns = {name: per_step(*taus) for name, taus in settings.items()}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(fn())
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {**{f"{k}_s_per_step": v for k, v in medians.items()},
            "mllm_only_over_joint": medians["mllm_only"] / medians["joint"],
            "vae_focused_over_joint": medians["vae_focused"] / medians["joint"]}


def bench_sweep(pipe, refs, size):
    pipe.clear_encoding_cache()
    before = pipe.encoder.runs
    taus = [(t1, t2) for t1 in (1.0, 0.95, 0.85) for t2 in (0.0, 0.5, 0.85)]
    for seed, (tau1, tau2) in enumerate(taus):
        pipe(image=refs, prompt=PROMPT, tau1=tau1, tau2=min(tau2, tau1), num_inference_steps=4, height=size,
             width=size, generator=torch.Generator().manual_seed(seed))
    return {"points": len(taus), "mllm_runs": pipe.encoder.runs - before, "target": "== 1"}


def bench_cache(pipe, refs, size, steps, repeats, **settings) -> dict:
    """Median seconds per mode, modes interleaved; ratios against none; full / all forward passes per mode."""
    from squeeze_studio.request import CACHE_MODES

    def call(mode):
        def run():
            pipe.set_step_cache(mode)
            out = pipe(image=refs, prompt=PROMPT, num_inference_steps=steps, height=size, width=size,
                       output_type="latent", generator=torch.Generator().manual_seed(0), **settings)
            passes[mode] = f"{out.full_passes}/{out.forward_passes}"
        return run

    passes = {}
    medians = interleaved({mode: call(mode) for mode in CACHE_MODES}, repeats)
    pipe.set_step_cache("none")
    return {mode: {"seconds": medians[mode], "ratio": medians[mode] / medians["none"], "passes": passes[mode]}
            for mode in CACHE_MODES}


def cache_rows(name: str, results: dict) -> list[str]:
    return [f"| {name}: cache {mode} / none ({r['seconds'] * 1e3:.0f} ms; {r['passes']} passes in full) "
            f"| **{r['ratio']:.2f}** | < 1 |" for mode, r in results.items() if mode != "none"]


def lora_rows(results: dict) -> list[str]:
    rows = []
    settings = []
    if "lora" in results:
        settings.append(("tiny pipeline whole call (32-wide layers: worst case unfused)", results["lora"]))
    if "lora_block" in results:
        b = results["lora_block"]
        settings.append((f"one {b['width']}-wide block, {b['tokens']} tokens", b))
    for what, r in settings:
        rows += [f"| one rank-16 LoRA fused / none, {what} ({r['fused']:.3f} s / {r['none']:.3f} s) "
                 f"| **{r['ratio']:.3f}** | <= 1.02 |",
                 f"| the same LoRA unfused / none ({r['unfused']:.3f} s) | {r['unfused_ratio']:.3f} "
                 "| (before fusing) |"]
    return rows


def markdown(results: dict) -> str:
    """The table of whichever sections ran (``--only``)."""
    rows = ["| benchmark | measured | target |", "|---|---|---|"]
    if "overhead" in results:
        o, ll = results["overhead"], results["overhead_last_layer"]
        rows += [f"| SqueezePipeline (DLA) / diffusers QwenImageEditPlus, whole call ({o['squeeze']:.3f} s / "
                 f"{o['diffusers']:.3f} s) | **{o['ratio']:.3f}** | <= 1.03 |",
                 f"| SqueezePipeline (last_layer) / diffusers, whole call ({ll['squeeze']:.3f} s / "
                 f"{ll['diffusers']:.3f} s) | **{ll['ratio']:.3f}** | <= 1.03 |"]
    if "stage_cost" in results:
        s = results["stage_cost"]
        rows += [f"| MLLM-only step / joint step, 2 refs ({s['mllm_only_s_per_step'] * 1e3:.1f} ms / "
                 f"{s['joint_s_per_step'] * 1e3:.1f} ms) | **{s['mllm_only_over_joint']:.2f}** | < 1 |",
                 f"| VAE-focused step / joint step ({s['vae_focused_s_per_step'] * 1e3:.1f} ms) "
                 f"| **{s['vae_focused_over_joint']:.2f}** | (no CFG pass) |"]
    if "sweep" in results:
        w = results["sweep"]
        rows.append(f"| MLLM runs in a {w['points']}-point tau sweep | **{w['mllm_runs']}** | 1 |")
    if "cache_demo" in results:
        rows += [*cache_rows(f"demo model, {results['steps']} steps at 64x64, staged", results["cache_demo"]),
                 *cache_rows(f"tiny stock model at {results['size']}x{results['size']}, CFG every step",
                             results["cache_stock"])]
    rows += lora_rows(results)
    meta = results["machine"]
    return (f"Measured {meta['date']} on {meta['machine']} ({meta['torch_threads']} torch threads), tiny "
            f"random-weight config at {results['size']}x{results['size']}, {results['steps']} steps, "
            f"median of {results['repeats']}.\n\n" + "\n".join(rows) + "\n")


def demo_pipeline():
    from squeeze_studio.pipeline import SqueezePipeline

    pipe = SqueezePipeline.from_pretrained(Path(__file__).resolve().parent.parent / "resources" / "demo-model")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def stock_pipeline(size: int):
    import tempfile

    from squeeze_studio.pipeline import SqueezePipeline
    from squeeze_studio.testing.tiny import build_tiny_stock_model

    folder = build_tiny_stock_model(Path(tempfile.mkdtemp(prefix="bench-stock-")) / "Qwen-Image-Edit-2509")
    pipe = SqueezePipeline.from_pretrained(folder, reference_image_area=size * size)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", default="", help="comma-separated sections: overhead, stage_cost, sweep, cache, lora")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    wanted = lambda name: not only or name in only  # noqa: E731

    from bench_lora import bench_lora_block, bench_lora_pipeline

    pipe = build_tiny_pipeline(mode="dla")
    pipe.register_to_config(reference_image_area=args.size * args.size)
    refs = references(args.size)
    results = {
        "size": args.size, "steps": args.steps, "repeats": args.repeats,
        "machine": {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                    "torch_threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d")},
    }
    if wanted("overhead"):
        last_layer = build_tiny_pipeline(mode="last_layer")
        last_layer.register_to_config(reference_image_area=args.size * args.size)
        results["overhead"] = bench_overhead(pipe, refs, args.size, args.steps, args.repeats)
        results["overhead_last_layer"] = bench_overhead(last_layer, refs, args.size, args.steps, args.repeats)
    if wanted("stage_cost"):
        results["stage_cost"] = bench_stage_cost(pipe, refs, args.size, args.steps, args.repeats)
    if wanted("sweep"):
        results["sweep"] = bench_sweep(pipe, refs, args.size)
    if wanted("cache"):
        results["cache_demo"] = bench_cache(demo_pipeline(), references(64), 64, args.steps, args.repeats)
        results["cache_stock"] = bench_cache(stock_pipeline(args.size), refs, args.size, args.steps, args.repeats)
    if wanted("lora"):
        results["lora"] = bench_lora_pipeline(pipe, refs, args.size, args.steps, args.repeats, PROMPT)
        results["lora_block"] = bench_lora_block(args.repeats)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "engine" + "".join(f"_{name}" for name in sorted(only))
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2))
    (out / f"{stem}.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()

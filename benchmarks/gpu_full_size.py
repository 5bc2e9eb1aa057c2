"""Full-size Qwen-Image-Edit-Plus on one GPU, random weights (nothing downloaded), bf16, 1024 x 1024, in sections:

- ``speed``: SqueezePipeline against diffusers' QwenImageEditPlusPipeline on the very same components (identity
  connector, both streams at every step: the same computation), and the staged schedule (0.95 / 0.85) against it;
- ``mode:SETUP``: each memory set-up as the engine applies it (``memory.apply``; ``mode+fp8`` is fp8 storage,
  the 24 GB set-ups are ``model-offload+fp8`` and ``group-offload``): seconds per image at 28 and 40 steps,
  from a fixed cost and a cost per step fitted to two runs (``--mode-steps``), so the per-image transfers of an
  offload mode show; peak VRAM allocated and reserved, what the card has in use (context included), against
  the plan;
- ``train``: the project's own stage trainer (accelerate, connector + rank-16 LoRA, gradient checkpointing) on
  encodings streamed from disk by ``write_store``;
- ``cache``: the staged schedule at ``--cache-steps`` with each step cache mode and compiled, beside stock diffusers
  (``gpu_step_cache.py``);
- ``model`` (with ``--model``): the real ``Engine`` on real cached weights: verify and load, the real
  tokenizer's prompt-prefix drop index against diffusers' 64, previews, and a tiled decode.

    python benchmarks/gpu_full_size.py --out benchmarks/results           # one H100/H200: designed for < 8 min
    python benchmarks/gpu_full_size.py --quick --out benchmarks/results   # the 24 GB set-ups: designed for < 5 min
    python benchmarks/gpu_full_size.py --model Qwen/Qwen-Image-Edit-2509 --memory model-offload --weights fp8
    python benchmarks/gpu_full_size.py --tiny --out /tmp/tiny             # the same code on the CPU (tests run this)

Each section runs in a fresh child process at full size (one mode's hooks and cached memory never touch the next
one's peak; a section that fails or times out costs only itself) and its JSON is written to ``--out`` the moment
it ends. The architecture comes from the configs that ship with the project (``hub/reference_configs``); the
tokenizer is the project's byte-level one (more tokens per word than Qwen's, so the instruction is a little longer
than a real one); the processor shows references as the real one does (384 x 384 -> 196 vision tokens).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

PROMPT = "the toy upside down on a red background, seen from above"
MODES = ("full", "model-offload", "group-offload", "sequential")
TINY_AREA = 64 * 64


# --- building the components ----------------------------------------------------------------------------------

def build_components(tiny: bool, device: str) -> dict:
    """Random-weight scheduler, VAE, MLLM, processor, tokenizer, transformer and identity connector on ``device``:
    the tiny test architectures, or the real Qwen-Image-Edit-2509 shapes in bf16."""
    from squeeze_studio.dla import LayerConnector
    from squeeze_studio.testing import tiny as fixtures

    tokenizer = fixtures.build_tokenizer()
    if tiny:
        mllm = fixtures.build_mllm(tokenizer)
        components = fixtures.build_qwen_image_components()
        processor = fixtures.build_processor(tokenizer)
    else:
        mllm, components = _full_size(tokenizer, device)
        processor = fixtures.build_processor(tokenizer, pixels=392 * 392)  # what a 384 x 384 reference becomes
    text = mllm.config.text_config
    connector = LayerConnector(mode="dla", num_layers=text.num_hidden_layers + 1, hidden_size=text.hidden_size,
                               num_heads=text.num_attention_heads)
    dtype = torch.float32 if tiny else torch.bfloat16
    components.update(text_encoder=mllm, tokenizer=tokenizer, processor=processor,
                      connector=torch.nn.Module.to(connector, device, dtype), scheduler=fixtures.qwen_edit_scheduler())
    for name in ("transformer", "vae", "text_encoder"):
        components[name].to(device).eval().requires_grad_(False)
    return components


def _full_size(tokenizer, device: str):
    """The real shapes, built straight on ``device`` in bf16 by each module's own initialisation."""
    from diffusers import AutoencoderKLQwenImage, QwenImageTransformer2DModel
    from transformers import AutoConfig, Qwen2_5_VLForConditionalGeneration

    from squeeze_studio.hub.reference_configs import QWEN_IMAGE_EDIT_PLUS as configs

    config = AutoConfig.from_pretrained(configs / "text_encoder")
    ids = tokenizer.convert_tokens_to_ids  # the config's vision token ids must be this tokenizer's
    config.image_token_id, config.video_token_id = ids("<|image_pad|>"), ids("<|video_pad|>")
    config.vision_start_token_id, config.vision_end_token_id = ids("<|vision_start|>"), ids("<|vision_end|>")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            torch.manual_seed(0)
            mllm = Qwen2_5_VLForConditionalGeneration(config)
            transformer = QwenImageTransformer2DModel.from_config(
                QwenImageTransformer2DModel.load_config(configs / "transformer"))
            vae = AutoencoderKLQwenImage.from_config(AutoencoderKLQwenImage.load_config(configs / "vae"))
    finally:
        torch.set_default_dtype(previous)
    return mllm, {"transformer": transformer, "vae": vae}


def pipelines(components: dict, tiny: bool):
    """(SqueezePipeline, QwenImageEditPlusPipeline) over the same component objects."""
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus as edit_plus

    from squeeze_studio.pipeline import SqueezePipeline

    areas = {}
    if tiny:  # show references at the tiny model's size, as the stock pipeline's module constants then do too
        edit_plus.CONDITION_IMAGE_SIZE = edit_plus.VAE_IMAGE_SIZE = TINY_AREA
        areas = dict(condition_image_area=TINY_AREA, reference_image_area=TINY_AREA, default_size=64)
    shared = {k: components[k] for k in ("scheduler", "vae", "text_encoder", "processor", "transformer")}
    ours = SqueezePipeline(connector=components["connector"], **shared, **areas)
    stock = edit_plus.QwenImageEditPlusPipeline(tokenizer=components["tokenizer"], **shared)
    stock.prompt_template_encode_start_idx = ours.encoder.drop_index  # 64 fits Qwen's own tokenizer only
    for pipe in (ours, stock):
        pipe.set_progress_bar_config(disable=True)
    return ours, stock


def references(count: int, size: int) -> list[Image.Image]:
    rng = np.random.RandomState(0)
    return [Image.fromarray(rng.randint(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(count)]


# --- measuring ------------------------------------------------------------------------------------------------

def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_call(pipe, device: str, **kwargs) -> dict:
    """End-to-end seconds and the median seconds between step ends (callback_on_step_end, both pipelines)."""
    stamps = []

    def on_step_end(_pipe, _i, _t, tensors):
        sync(device)
        stamps.append(time.perf_counter())
        return {}

    sync(device)
    start = time.perf_counter()
    pipe(callback_on_step_end=on_step_end, output_type="pt", generator=torch.Generator("cpu").manual_seed(0),
         **kwargs)
    sync(device)
    steps = np.diff([start, *stamps])[1:]  # the first interval also holds the encoding
    return {"seconds": time.perf_counter() - start, "step": float(np.median(steps)) if len(steps) else None}


def card_memory(device: str) -> dict:
    """Peaks since the section's reset: what the allocator handed out and reserved, and what the whole card has
    in use now (``mem_get_info``: the CUDA context and anything the allocator holds included)."""
    if not device.startswith("cuda"):
        return {"peak_allocated": None, "peak_reserved": None, "card_used": None}
    free, total = torch.cuda.mem_get_info(device)
    return {"peak_allocated": torch.cuda.max_memory_allocated(device),
            "peak_reserved": torch.cuda.max_memory_reserved(device), "card_used": total - free}


def per_image(runs: dict[int, float]) -> dict:
    """Seconds per image at 28 and 40 steps from two runs of the same request at two step counts: a fixed cost
    (encoding, decoding, the transfers an offload mode makes once per image) plus a cost per step."""
    (n1, t1), (n2, t2) = sorted(runs.items())
    step = (t2 - t1) / (n2 - n1)
    fixed = t1 - step * n1
    return {"runs": {str(n): t for n, t in runs.items()}, "fixed": fixed, "per_step": step,
            "image@28": fixed + 28 * step, "image@40": fixed + 40 * step}


def section_speed(tiny: bool, device: str, steps: int, size: int, refs: tuple[int, ...]) -> dict:
    """SqueezePipeline against diffusers' pipeline on the very same components (both streams at every step:
    the same computation), and the staged schedule against it; one timed run each after a 2-step warm-up."""
    ours, stock = pipelines(build_components(tiny, device), tiny)
    out = {}
    for count in refs:
        common = dict(image=references(count, size), prompt=PROMPT, num_inference_steps=steps, height=size,
                      width=size)
        timed_call(ours, device, **dict(common, num_inference_steps=2), tau1=1.0, tau2=0.0, guidance_scale=4.0)

        def run_ours(common=common, **taus):
            ours.clear_encoding_cache()  # cold, as the stock pipeline always is
            return timed_call(ours, device, **common, guidance_scale=4.0, **taus)

        squeeze = run_ours(tau1=1.0, tau2=0.0)
        diffusers = timed_call(stock, device, **common, true_cfg_scale=4.0, negative_prompt=" ")
        staged = run_ours(tau1=0.95, tau2=0.85)
        out[f"{count} ref"] = {"squeeze": squeeze, "diffusers": diffusers, "staged": staged,
                               "squeeze/diffusers": squeeze["seconds"] / diffusers["seconds"],
                               "staged/joint": staged["seconds"] / squeeze["seconds"]}
    return out


def section_mode(tiny: bool, device: str, setup: str, step_counts: tuple[int, int], size: int) -> dict:
    """One memory set-up (``mode`` or ``mode+fp8``): the components parked in host memory as a loaded model is,
    fp8 storage made there, the mode applied by ``apply_memory_mode`` with the plan's pinning choice, then one
    request with 2 references (joint, guidance 4: the stock behaviour) at two step counts."""
    from squeeze_studio.hub.reference_configs import QWEN_IMAGE_EDIT_PLUS
    from squeeze_studio.memory import plan_memory
    from squeeze_studio.memory.apply import apply_memory_mode, store_in_fp8

    mode, _, weights = setup.partition("+")
    if weights == "nf4":
        return {"skipped": "nf4 is quantized while loading (bitsandbytes, from_pretrained): random full-size "
                           "weights are not on disk; --model runs it on real weights"}
    cuda = device.startswith("cuda")
    plan = None if tiny else plan_memory(QWEN_IMAGE_EDIT_PLUS, mode, size, size, 2, device, weights or None,
                                         free_vram=torch.cuda.mem_get_info(device)[0], free_ram=_free_ram())
    components = build_components(tiny, device)  # on the GPU at full size: fast; parked below where a mode needs
    if mode != "full" or weights:
        for module in components.values():
            if isinstance(module, torch.nn.Module):
                module.to("cpu")
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    ours, _ = pipelines(components, tiny)
    if weights == "fp8":
        store_in_fp8(ours.transformer)
    apply_memory_mode(ours, mode, device, plan.low_cpu_mem_usage if plan else False)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    request = dict(image=references(2, size), prompt=PROMPT, height=size, width=size, tau1=1.0, tau2=0.0,
                   guidance_scale=4.0)
    timed_call(ours, device, num_inference_steps=1, **request)  # warm-up: kernels, the hooks' first pass
    runs = {}
    for steps in step_counts:
        ours.clear_encoding_cache()  # every image pays its encoding, as a new request does
        runs[steps] = timed_call(ours, device, num_inference_steps=steps, **request)["seconds"]
    return {**per_image(runs), **card_memory(device), "planned_vram": plan.vram_bytes if plan else None,
            "planned_ram": plan.ram_bytes if plan else None,
            "low_cpu_mem_usage": plan.low_cpu_mem_usage if plan else None}


def section_train(tiny: bool, device: str, size: int, work: Path, rank: int = 16) -> dict:
    """The project's own stage trainer (``train_stage``: accelerate, connector and a rank-``rank`` LoRA,
    gradient checkpointing, bf16 on a GPU) on streamed encodings that ``write_store`` made from 2 SynthSubjects
    records: 2 optimiser steps of batch 1; seconds for the encoding and per step, and the peaks."""
    from squeeze_studio.synth.dataset import load_jsonl, make_dataset
    from squeeze_studio.train.encodings_store import EncodingStore, store_settings, write_store
    from squeeze_studio.train.trainer import StageConfig, train_stage

    ours, _ = pipelines(build_components(tiny, device), tiny)
    records = load_jsonl(make_dataset(work / "data", 2, seed=0, split="train", max_refs=1))
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    settings = store_settings(ours, records, size)
    write_store(ours, records, work / "encodings", settings, batch=2)
    encoded = time.perf_counter() - start
    config = StageConfig("identity", 2, batch_size=1, use_references=True, lora_rank=rank, keep_lora=True,
                         gradient_checkpointing=True, mixed_precision="no" if tiny else "bf16", warmup_steps=1,
                         timestep_sampling="inference", log_every=1)
    logs = []
    start = time.perf_counter()
    train_stage(ours, EncodingStore(work / "encodings"), config, work / "stage", size, on_log=logs.append)
    trainable = sum(p.numel() for p in ours.transformer.parameters() if p.requires_grad)
    return {"encode_seconds": encoded, "train_seconds": time.perf_counter() - start, "steps": 2,
            "trainable": trainable + sum(p.numel() for p in ours.connector.parameters()),
            "final_loss": logs[-1]["loss"] if logs else None, **card_memory(device)}


def section_model(model: str, addon: str | None, device: str, memory: str, weights: str | None, size: int,
                  work: Path) -> dict:
    """The real ``Engine`` on a real model folder or cached repo id: verify and load, the tokenizer's
    prompt-prefix drop index against the 64 diffusers assumes, then one image with previews at ``size`` and one
    larger than 2 megapixels (the VAE decodes it in tiles)."""
    from squeeze_studio.engine import Engine
    from squeeze_studio.events import ImageResult, StepEvent
    from squeeze_studio.request import GenerationRequest

    start = time.perf_counter()
    engine = Engine(model, addon=addon, device=device, memory=memory, weights=weights, previews=True)
    loaded = time.perf_counter() - start
    drop_index = engine.pipe.encoder.drop_index
    work.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(references(2, 512)):
        paths.append(os.fspath(work / f"ref{i}.png"))
        image.save(paths[-1])
    out = {"model": engine.model_name, "mode": engine.memory_mode, "load_seconds": loaded, "drop_index": drop_index,
           "drop_index_is_diffusers": drop_index == 64}
    tiled = int(size * 1.5) // 16 * 16
    for name, side in (("image", size), ("tiled", tiled)):
        request = GenerationRequest(instruction=PROMPT, references=paths, num_inference_steps=4, width=side,
                                    height=side, seed=0)
        events = list(engine.generate(request))
        result = next(e for e in events if isinstance(e, ImageResult))
        out[name] = {"side": side, "seconds": result.seconds, "previews": sum(
            isinstance(e, StepEvent) and e.preview is not None for e in events), "tiled": engine.pipe.vae.use_tiling}
    return {**out, **card_memory(device)}


def _free_ram() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def _tiny_model(work: Path) -> str:
    """A tiny model folder on disk for ``--tiny``'s ``model`` section (references shown at 64 x 64)."""
    from squeeze_studio.testing.tiny import build_tiny_model

    folder = work / "tiny-model"
    return str(folder if folder.is_dir() else build_tiny_model(folder))


# --- running --------------------------------------------------------------------------------------------------

SETUPS = ("full", "model-offload", "group-offload", "sequential", "model-offload+fp8", "group-offload+fp8",
          "model-offload+nf4")
QUICK_SETUPS = ("full", "model-offload+fp8", "group-offload")


def sections(args) -> list[str]:
    names = ["speed", "cache"] + [f"mode:{s}" for s in (QUICK_SETUPS if args.quick else SETUPS)]
    names += [] if args.quick else ["train"]
    return names + (["model"] if args.model or args.tiny else [])


def run_one(args, name: str) -> dict:
    """One section, in this process (``--tiny``, or a child's ``--section``)."""
    work = Path(args.work)
    if name == "speed":
        return section_speed(args.tiny, args.device, args.steps, args.size, (2,) if args.quick else (1, 2))
    if name == "cache":
        from gpu_step_cache import section_cache

        ours, stock = pipelines(build_components(args.tiny, args.device), args.tiny)
        return section_cache(ours, stock, references(2, args.size), args.device, args.cache_steps, args.size,
                             timed_call)
    if name.startswith("mode:"):
        counts = tuple(int(n) for n in args.mode_steps.split(","))
        return section_mode(args.tiny, args.device, name.removeprefix("mode:"), counts, args.size)
    if name == "train":
        return section_train(args.tiny, args.device, args.size, work / "train")
    model = args.model or _tiny_model(work)
    return section_model(model, args.addon, args.device, args.memory, args.weights,
                         64 if args.tiny else args.size, work / "model")


def run_section(args, name: str) -> dict:
    """Full size: a fresh child process per section, so one mode's hooks and cached memory never touch the next
    one's peak, and a section that fails or runs out of time costs only itself."""
    if args.tiny:
        try:
            return run_one(args, name)
        except Exception as error:  # noqa: BLE001 - a section's failure is its result; the others still run
            return {"error": f"{type(error).__name__}: {error}"}
    command = [sys.executable, __file__, "--section", name, *args.passed]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.section_timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.section_timeout} s"}
    if done.returncode:
        return {"error": (done.stderr.strip() or "no output").splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def gib(value) -> str:
    return "-" if value is None else f"{value / 2**30:.1f} GiB"


def table(results: dict) -> str:
    rows = ["| measure | value |", "|---|---|"]
    for name, r in results.items():
        if not isinstance(r, dict) or name in ("card",):
            continue
        if "error" in r or "skipped" in r:
            rows.append(f"| {name} | {'failed: ' + r['error'] if 'error' in r else 'skipped: ' + r['skipped']} |")
        elif name == "speed":
            for refs, speed in ((k, v) for k, v in r.items() if isinstance(v, dict)):
                rows += [f"| {refs}: SqueezePipeline / diffusers, end to end (target <= 1.02) | "
                         f"{speed['squeeze/diffusers']:.3f} |",
                         f"| {refs}: staged 0.95/0.85 / joint, end to end | {speed['staged/joint']:.3f} |"]
        elif name == "cache":
            from gpu_step_cache import rows as cache_rows

            rows += cache_rows(r)
        elif name.startswith("mode:"):
            rows.append(f"| {name.removeprefix('mode:')}: s per image at 28 / 40 steps (fixed + per step) | "
                        f"{r['image@28']:.1f} / {r['image@40']:.1f} ({r['fixed']:.1f} + {r['per_step']:.2f}) |")
        elif name == "train":
            rows.append(f"| stage trainer, LoRA 16 + connector, checkpointing: encode 2 records, 2 steps | "
                        f"{r['encode_seconds']:.1f} s, {r['train_seconds']:.1f} s, {gib(r['peak_reserved'])} |")
        elif name == "model":
            rows.append(f"| {r['model']} ({r['mode']}): load, image, tiled image | {r['load_seconds']:.0f} s, "
                        f"{r['image']['seconds']:.1f} s, {r['tiled']['seconds']:.1f} s; drop index "
                        f"{r['drop_index']}{'' if r['drop_index_is_diffusers'] else ' (diffusers assumes 64)'} |")
    return "\n".join(rows)


def memory_table(results: dict) -> str:
    """Plan against measured, per memory set-up (full size)."""
    rows = ["| set-up | planned VRAM | peak allocated | peak reserved | card in use | reserved / planned | "
            "planned RAM |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        if name.startswith("mode:") and isinstance(r, dict) and "fixed" in r:
            ratio = f"{r['peak_reserved'] / r['planned_vram']:.2f}" if r["peak_reserved"] and r["planned_vram"] \
                else "-"
            rows.append(f"| {name.removeprefix('mode:')} | {gib(r['planned_vram'])} | {gib(r['peak_allocated'])} | "
                        f"{gib(r['peak_reserved'])} | {gib(r['card_used'])} | {ratio} | {gib(r['planned_ram'])} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny architectures on the CPU (a quick check)")
    parser.add_argument("--quick", action="store_true", help="the 24 GB set-ups and one speed row (under 5 min)")
    parser.add_argument("--device", default=None, help="default: cuda, or cpu with --tiny")
    parser.add_argument("--size", type=int, default=None, help="output side (default 1024; 64 with --tiny)")
    parser.add_argument("--steps", type=int, default=6, help="denoising steps in the speed section")
    parser.add_argument("--cache-steps", type=int, default=28, help="denoising steps in the cache section")
    parser.add_argument("--mode-steps", default="2,4", help="the two step counts each memory set-up runs")
    parser.add_argument("--model", default=None, help="also run the real Engine on this model folder or repo id")
    parser.add_argument("--addon", default=None, help="with --model: an add-on folder")
    parser.add_argument("--memory", default="auto", help="with --model: the memory mode")
    parser.add_argument("--weights", default=None, help="with --model: fp8, int8, nf4")
    parser.add_argument("--section-timeout", type=int, default=240, help="seconds per section, full size")
    parser.add_argument("--out", default=None, help="folder for one JSON per section, written as each ends")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--section", default=None, help=argparse.SUPPRESS)  # a child process's one section
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.passed = argv
    args.device = args.device or ("cpu" if args.tiny else "cuda")
    args.size = args.size or (64 if args.tiny else 1024)
    if args.work is None:
        import tempfile

        args.work = tempfile.mkdtemp(prefix="gpu_full_size-")
        args.passed = [*argv, "--work", args.work]
    if args.section:
        print(json.dumps(run_one(args, args.section), default=str))
        return 0
    if not args.tiny and not torch.cuda.is_available():
        print("error: full size needs a CUDA GPU; --tiny runs the same code on the CPU", file=sys.stderr)
        return 2
    card = (torch.cuda.get_device_name(args.device) if args.device.startswith("cuda")
            else f"CPU ({platform.machine()}, {os.cpu_count()} cores)")
    results = {"card": card, "size": args.size, "torch": torch.__version__}
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps(results, indent=1))
    for name in sections(args):
        start = time.perf_counter()
        results[name] = run_section(args, name)
        results[name]["wall_seconds"] = time.perf_counter() - start
        print(f"{name}: {results[name]['wall_seconds']:.0f} s", file=sys.stderr, flush=True)
        if out:  # now, so a later section's failure or the machine going away loses nothing measured
            (out / f"{name.replace(':', '_').replace('+', '_')}.json").write_text(
                json.dumps(results[name], indent=1, default=str))
    print(f"{card}, {args.size}x{args.size}, bf16{' (tiny, fp32)' if args.tiny else ''}\n{table(results)}")
    if not args.tiny:
        print(f"\n{memory_table(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Full-size Qwen-Image-Edit-Plus on one GPU, random weights (nothing downloaded), bf16, 1024 x 1024:

1. seconds per step and end to end, SqueezePipeline against diffusers' QwenImageEditPlusPipeline on the very
   same components (identity connector, both streams at every step: the same computation), 1 and 2 references;
2. the staged schedule (tau 0.95 / 0.85) against MLLM + VAE at every step;
3. peak VRAM per memory mode (``squeeze_studio.memory.apply``, what the engine runs) against the plan;
4. one LoRA training step of the transformer (rank 16, gradient checkpointing): seconds and peak VRAM.

    python benchmarks/gpu_full_size.py --out benchmarks/results      # one H100/H200, under 8 minutes
    python benchmarks/gpu_full_size.py --tiny                        # the same code on the CPU, seconds

Full size, every memory mode runs in a fresh child process (``--section``), so one mode's hooks and cached
memory never touch the next one's peak. The architecture comes from the configs that ship with the project
(``squeeze_studio/hub/reference_configs``); the tokenizer is the project's byte-level one (more tokens per word
than Qwen's, so the instruction is a little longer than a real one), the processor shows references as the
real one does (384 x 384 -> 196 vision tokens).
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


def best_of(repeats: int, fn) -> dict:
    runs = [fn() for _ in range(repeats)]
    return min(runs, key=lambda r: r["seconds"])


def section_speed(tiny: bool, device: str, steps: int, size: int, repeats: int) -> dict:
    """Sections 1 and 2, everything on ``device``."""
    ours, stock = pipelines(build_components(tiny, device), tiny)
    out = {}
    for count in (1, 2):
        common = dict(image=references(count, size), prompt=PROMPT, num_inference_steps=steps, height=size,
                      width=size)
        timed_call(ours, device, **common, tau1=1.0, tau2=0.0, guidance_scale=4.0)  # warm-up: kernels, caches

        def run_ours(common=common, **taus):
            ours.clear_encoding_cache()  # cold, as the stock pipeline always is
            return timed_call(ours, device, **common, guidance_scale=4.0, **taus)

        def run_stock(common=common):
            return timed_call(stock, device, **common, true_cfg_scale=4.0, negative_prompt=" ")

        squeeze = best_of(repeats, lambda: run_ours(tau1=1.0, tau2=0.0))
        diffusers = best_of(repeats, run_stock)
        staged = best_of(repeats, lambda: run_ours(tau1=0.95, tau2=0.85))
        out[f"{count} ref"] = {"squeeze": squeeze, "diffusers": diffusers, "staged": staged,
                               "squeeze/diffusers": squeeze["seconds"] / diffusers["seconds"],
                               "staged/joint": staged["seconds"] / squeeze["seconds"]}
    return out


def section_mode(tiny: bool, device: str, mode: str, steps: int, size: int) -> dict:
    """Section 3 for one mode: components built on the CPU-side as the engine loads them, the mode applied by
    ``apply_memory_mode``, one generation with 2 references; peak VRAM against the plan."""
    from squeeze_studio.memory import plan_memory
    from squeeze_studio.memory.apply import apply_memory_mode

    components = build_components(tiny, device if mode == "full" else "cpu" if tiny else device)
    if mode != "full":  # built on the GPU (fast), then parked in host memory as a loaded model would be
        for module in components.values():
            if isinstance(module, torch.nn.Module):
                module.to("cpu")
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    ours, _ = pipelines(components, tiny)
    apply_memory_mode(ours, mode, device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    result = timed_call(ours, device, image=references(2, size), prompt=PROMPT, num_inference_steps=steps,
                        height=size, width=size, tau1=1.0, tau2=0.0, guidance_scale=4.0)
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None
    from squeeze_studio.hub.reference_configs import QWEN_IMAGE_EDIT_PLUS

    plan = None if tiny else plan_memory(QWEN_IMAGE_EDIT_PLUS, mode, size, size, 2, device,
                                         free_vram=torch.cuda.get_device_properties(device).total_memory,
                                         free_ram=2**40)
    return {**result, "peak_vram": peak, "planned_vram": plan.vram_bytes if plan else None,
            "measured/planned": peak / plan.vram_bytes if plan and peak else None}


def section_train(tiny: bool, device: str, size: int, rank: int = 16) -> dict:
    """Section 4: one AdamW step of a rank-``rank`` LoRA on the transformer, gradient checkpointing on, at
    ``size`` with 2 references' tokens and a 300-token context."""
    from peft import LoraConfig

    components = build_components(tiny, device)
    transformer = components["transformer"]
    for name in ("text_encoder", "vae", "connector"):
        components[name].to("cpu")
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                       target_modules=["to_q", "to_k", "to_v", "to_out.0", "add_q_proj",
                                                       "add_k_proj", "add_v_proj", "to_add_out"]))
    transformer.enable_gradient_checkpointing()
    transformer.train()
    trainable = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    config, dtype = transformer.config, transformer.dtype
    grid = size // 16  # 8x VAE, 2x2 patches
    tokens = grid * grid
    latents = torch.randn(1, tokens * 3, config.in_channels, device=device, dtype=dtype)  # target + 2 references
    context = torch.randn(1, 300, config.joint_attention_dim, device=device, dtype=dtype)
    shapes = [[(1, grid, grid)] * 3]
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    start = time.perf_counter()
    with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=not tiny):
        velocity = transformer(hidden_states=latents, timestep=torch.full((1,), 0.5, device=device, dtype=dtype),
                               encoder_hidden_states=context, encoder_hidden_states_mask=None, img_shapes=shapes,
                               return_dict=False)[0][:, :tokens]
    velocity.float().pow(2).mean().backward()
    optimizer.step()
    sync(device)
    return {"seconds": time.perf_counter() - start, "trainable": sum(p.numel() for p in trainable),
            "peak_vram": torch.cuda.max_memory_allocated() if device.startswith("cuda") else None}


# --- running --------------------------------------------------------------------------------------------------

def run_section(args, name: str) -> dict:
    if args.tiny:  # seconds: in this process
        return SECTIONS[name](args)
    command = [sys.executable, __file__, "--section", name, "--steps", str(args.steps), "--size", str(args.size),
               "--mode-steps", str(args.mode_steps), "--repeats", str(args.repeats), "--device", args.device]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.section_timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.section_timeout} s"}
    if done.returncode:
        lines = (done.stderr.strip() or "no output").splitlines()
        return {"error": lines[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


SECTIONS = {
    "speed": lambda a: section_speed(a.tiny, a.device, a.steps, a.size, a.repeats),
    "train": lambda a: section_train(a.tiny, a.device, a.size),
    **{f"mode:{m}": (lambda a, m=m: section_mode(a.tiny, a.device, m, a.mode_steps, a.size)) for m in MODES},
}


def gib(value) -> str:
    return "-" if value is None else f"{value / 2**30:.1f} GiB"


def table(results: dict) -> str:
    rows = ["| measure | value |", "|---|---|"]
    for refs, speed in results.get("speed", {}).items():
        if "error" in speed or not isinstance(speed, dict):
            continue
        rows += [f"| {refs}: SqueezePipeline / diffusers, end to end (target <= 1.02) | "
                 f"{speed['squeeze/diffusers']:.3f} |",
                 f"| {refs}: seconds per step, ours / diffusers | {speed['squeeze']['step']:.3f} / "
                 f"{speed['diffusers']['step']:.3f} |",
                 f"| {refs}: staged 0.95/0.85 / joint, end to end (target < 0.95) | {speed['staged/joint']:.3f} |"]
    if "error" in results.get("speed", {}):
        rows.append(f"| speed | failed: {results['speed']['error']} |")
    for mode in MODES:
        r = results.get(f"mode:{mode}", {})
        if "error" in r:
            rows.append(f"| {mode} | failed: {r['error']} |")
        elif r:
            ratio = f", measured/planned {r['measured/planned']:.2f}" if r.get("measured/planned") else ""
            rows.append(f"| {mode}: peak VRAM (plan {gib(r['planned_vram'])}{ratio}), s/step | "
                        f"{gib(r['peak_vram'])}, {r['step']:.2f} s |")
    train = results.get("train", {})
    if "error" in train:
        rows.append(f"| LoRA training step | failed: {train['error']} |")
    elif train:
        rows.append(f"| LoRA rank 16 training step, gradient checkpointing | {train['seconds']:.2f} s, "
                    f"{gib(train['peak_vram'])}, {train['trainable'] / 1e6:.1f}M trainable |")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny architectures on the CPU (a quick check)")
    parser.add_argument("--device", default=None, help="default: cuda, or cpu with --tiny")
    parser.add_argument("--size", type=int, default=None, help="output side (default 1024; 64 with --tiny)")
    parser.add_argument("--steps", type=int, default=8, help="denoising steps in the speed section")
    parser.add_argument("--mode-steps", type=int, default=2, help="denoising steps per memory mode")
    parser.add_argument("--repeats", type=int, default=2, help="runs per speed measure (the fastest counts)")
    parser.add_argument("--sections", default="speed,mode:full,mode:model-offload,mode:group-offload,"
                                               "mode:sequential,train")
    parser.add_argument("--section-timeout", type=int, default=150, help="seconds per section, full size")
    parser.add_argument("--out", default=None, help="folder for gpu_full_size.json")
    parser.add_argument("--section", default=None, help=argparse.SUPPRESS)  # a child process's one section
    args = parser.parse_args(argv)
    args.device = args.device or ("cpu" if args.tiny else "cuda")
    args.size = args.size or (64 if args.tiny else 1024)
    if args.section:
        print(json.dumps(SECTIONS[args.section](args)))
        return 0
    if not args.tiny and not torch.cuda.is_available():
        print("error: full size needs a CUDA GPU; --tiny runs the same code on the CPU", file=sys.stderr)
        return 2
    card = (torch.cuda.get_device_name(args.device) if args.device.startswith("cuda")
            else f"CPU ({platform.machine()}, {os.cpu_count()} cores)")
    results = {"card": card, "size": args.size, "torch": torch.__version__}
    for name in args.sections.split(","):
        start = time.perf_counter()
        results[name] = run_section(args, name)
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    print(f"{card}, {args.size}x{args.size}, bf16{' (tiny, fp32)' if args.tiny else ''}\n{table(results)}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "gpu_full_size.json").write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``squeeze train``: the demo model's recipe, or one stage on any JSONL dataset and model folder."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import settings as real


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    train = subparsers.add_parser("train", help="train the demo model, or one stage on your own data")
    commands = train.add_subparsers(dest="train_command", required=True, parser_class=type(train))

    demo = commands.add_parser("demo", help="retrain the built-in demo model from scratch (resumable)")
    demo.add_argument("--out", default="resources/demo-model")
    demo.add_argument("--work", default="work/demo", help="data, checkpoints and caches; rerun to resume")
    demo.add_argument("--smoke", action="store_true", help="a few steps of every stage (a quick check)")
    demo.add_argument("--recipe", choices=("v4", "v5"), default="v5",
                      help="v5: the shipped model's (v4's stages, then a copy -> transform curriculum); v4: the one "
                           "before (resources/demo-model/README.md)")
    demo.add_argument("--start-from", metavar="MODEL",
                      help="a model made by the recipe's stages 0-2 (e.g. v4): train only the curriculum")
    demo.add_argument("--no-references", action="store_true",
                      help='the "MLLM only" control: stage 2 without reference VAE tokens (reuses data, VAE, stage 1)')
    demo.add_argument("--pairs-first", type=int, default=0, metavar="STEPS",
                      help="curriculum: the first STEPS of stage 2 on identity pairs only (measured: no gain)")
    demo.add_argument("--mllm-steps", type=int, default=0, metavar="STEPS",
                      help="stage 0b: pre-train the MLLM on scene captions and questions first (default 0: random)")
    demo.set_defaults(func=run_demo)

    curves = commands.add_parser("curves", help="draw training-loss curves from a work folder's logs")
    curves.add_argument("--run", action="append", required=True, metavar="LABEL=DIR:STAGE,STAGE,...",
                        help="one line set: a label, a work folder and its stage folders in training order "
                             "(repeatable), e.g. v4=work/demo:stage1,stage2,stage2-restart")
    curves.add_argument("--out", required=True, help="figure to write (PNG)")
    curves.set_defaults(func=run_curves)

    stage = commands.add_parser(
        "stage", help="stage 1 (align) or 2 (identity) on a JSONL dataset; writes an add-on",
        description="Defaults are sized for the real 20B backbone on one GPU: LoRA rank 16, batch 1 x 4 accumulated, "
                    "lr 1e-4, 2000 steps, bf16, gradient checkpointing; see docs/training.md. Runs under "
                    "`accelerate launch -m squeeze_studio.cli train stage ...` on several GPUs.")
    stage.add_argument("--model", required=True,
                       help="base to start from: model folder, cached repo id (e.g. Qwen/Qwen-Image-Edit-2509) "
                            "or add-on folder")
    stage.add_argument("--addon", default=None, metavar="DIR", help="continue training this add-on of the model")
    stage.add_argument("--data", required=True, help="dataset folder with data.jsonl")
    stage.add_argument("--stage", choices=("align", "identity"), required=True)
    stage.add_argument("--steps", type=int, default=real.STEPS, help="optimiser steps (default %(default)s)")
    stage.add_argument("--out", required=True,
                       help="where the add-on goes (connector + LoRA + config naming the base); see --full")
    stage.add_argument("--full", action="store_true",
                       help="write a full model folder (every component, LoRA fused) instead of an add-on")
    stage.add_argument("--work", default=None,
                       help="encodings and checkpoints (default: OUT.work); rerun to resume")
    stage.add_argument("--batch-size", type=int, default=real.BATCH_SIZE,
                       help="examples per micro-batch and process (default %(default)s)")
    stage.add_argument("--grad-accum", type=int, default=real.GRAD_ACCUM, metavar="N",
                       help="micro-batches per optimiser step (default %(default)s)")
    stage.add_argument("--lr", type=float, default=real.LEARNING_RATE, help="peak learning rate (default %(default)s)")
    stage.add_argument("--warmup", type=int, default=real.WARMUP_STEPS, metavar="STEPS",
                       help="linear warm-up steps (default %(default)s)")
    stage.add_argument("--lora-rank", type=int, default=real.LORA_RANK,
                       help="rank of the transformer LoRA (default %(default)s); 0 trains every transformer weight "
                            "(--full only)")
    stage.add_argument("--lora-targets", default=",".join(real.LORA_TARGETS), metavar="NAMES",
                       help="comma-separated transformer module names that get a LoRA (default: every attention "
                            "projection of both streams)")
    stage.add_argument("--subject-weight", type=float, default=0.0)
    stage.add_argument("--timestep-sampling", choices=("inference", "logit_normal"), default="inference",
                       help="inference (default): t spread as the inference schedule's steps, with its shift at this "
                            "size; logit_normal: mid noise levels (docs/DESIGN.md 5.3)")
    stage.add_argument("--stage-aware", action="store_true",
                       help="identity stage: condition each t as the paper's stage plan does (no references from "
                            "tau1 up, the VAE-focused reading below tau2)")
    stage.add_argument("--vae-reading", choices=("null", "text", "both"), default="both",
                       help="with --stage-aware, what the steps below tau2 read (default both, half each)")
    stage.add_argument("--size", type=int, default=None, help="training resolution (default: the model's)")
    stage.add_argument("--reference-area", type=int, default=None, metavar="PIXELS",
                       help="references are encoded at about this many pixels, keeping their aspect ratio "
                            "(default: SIZE x SIZE)")
    stage.add_argument("--mixed-precision", choices=("auto", "no", "bf16"), default="auto",
                       help="auto (default): bf16 on a CUDA GPU that has it (or what `accelerate launch` says), "
                            "else no (float32)")
    stage.add_argument("--no-gradient-checkpointing", dest="gradient_checkpointing", action="store_false",
                       help="keep every activation (faster, much more memory); checkpointing is on by default")
    stage.add_argument("--quantize-base", choices=("none", "4bit"), default="none",
                       help="4bit: the frozen transformer in 4-bit NF4 under the LoRA (QLoRA; a 24 GB GPU); "
                            "needs bitsandbytes and CUDA")
    stage.add_argument("--encode-batch", type=int, default=real.ENCODE_BATCH, metavar="N",
                       help="records per MLLM/VAE pass while encoding the dataset (default %(default)s)")
    stage.add_argument("--checkpoint-every", type=int, default=real.CHECKPOINT_EVERY, metavar="STEPS")
    stage.add_argument("--seed", type=int, default=0)
    stage.set_defaults(func=run_stage)
    return train


def run_demo(args) -> int:
    from dataclasses import replace

    from .demo import DemoRecipe, build_demo

    recipe = DemoRecipe.smoke() if args.smoke else DemoRecipe.v5() if args.recipe == "v5" else DemoRecipe()
    report = build_demo(args.out, args.work, replace(recipe, use_references=not args.no_references,
                                                       pairs_first_steps=args.pairs_first, mllm_steps=args.mllm_steps),
                        start_from=args.start_from)
    print(f"wrote {args.out} in {report['seconds']:.0f} s")
    return 0


def run_curves(args) -> int:
    from .curves import plot_curves, stage_logs

    runs = {}
    for spec in args.run:
        label, eq, rest = spec.partition("=")
        folder, colon, stages = rest.rpartition(":")
        if not eq or not colon or not folder or not stages:
            raise ValueError(f"--run wants LABEL=DIR:STAGE,STAGE,... (got {spec!r})")
        runs[label] = stage_logs(Path(folder), [s for s in stages.split(",") if s])
    print(f"wrote {plot_curves(runs, args.out)}")
    return 0


def _mixed_precision(choice: str) -> str:
    import os

    import torch

    if choice != "auto":
        return choice
    launched = os.environ.get("ACCELERATE_MIXED_PRECISION")  # set by `accelerate launch`
    if launched:
        if launched not in ("no", "bf16"):
            raise ValueError(f"mixed precision {launched} is not supported here; use bf16 or no")
        return launched
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def _quantization(choice: str):
    """diffusers' config loading the transformer in 4-bit NF4, or None; one line when it cannot be done here."""
    import importlib.util

    import torch

    if choice == "none":
        return None
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError("--quantize-base 4bit needs bitsandbytes: pip install bitsandbytes")
    if not torch.cuda.is_available():
        raise ValueError("--quantize-base 4bit needs a CUDA GPU")
    from diffusers import PipelineQuantizationConfig

    return PipelineQuantizationConfig(
        quant_backend="bitsandbytes_4bit", components_to_quantize=["transformer"],
        quant_kwargs={"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                      "bnb_4bit_compute_dtype": torch.bfloat16})


def encode_dataset(source, records: list[dict], work, args, dtype):
    """Stream the dataset's encodings to ``work/encodings`` (once; resumable; split across processes) with the
    base's MLLM and VAE on this process's device, then free that device for training. Returns (store, the
    MLLM-and-VAE pipeline, whose components training reuses)."""
    import gc

    import torch
    from accelerate import PartialState

    from ..pipeline import SqueezePipeline
    from .encodings_store import EncodingStore, store_complete, store_settings, write_store

    state = PartialState()
    base = SqueezePipeline.from_pretrained(source.spec, transformer=None, dtype=dtype)
    base.set_progress_bar_config(disable=True)
    size = args.size or base.config.default_size
    folder = work / "encodings"
    model = f"{source.folder.resolve()}@{source.revision}" if source.revision else str(source.folder.resolve())
    settings = store_settings(base, records, size, args.reference_area, model=model)
    if not store_complete(folder, settings):
        base.text_encoder.to(state.device), base.vae.to(state.device)
        done = [0]

        def report(count: int) -> None:
            done[0] += count
            if done[0] % 100 < count or done[0] * state.num_processes >= len(records):
                print(f"encoded {done[0]} records (process {state.process_index})", flush=True)

        write_store(base, records, folder, settings, batch=args.encode_batch, process_index=state.process_index,
                    num_processes=state.num_processes, progress=report)
        base.text_encoder.to("cpu"), base.vae.to("cpu")
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    state.wait_for_everyone()
    return EncodingStore(folder), base, size


def run_stage(args) -> int:
    from pathlib import Path

    import torch
    from accelerate import PartialState

    from ..hub.defaults import PAPER_DEFAULTS, StageDefaults
    from ..hub.resolve import resolve_model
    from ..pipeline import SqueezePipeline
    from ..pipeline.addon import save_addon
    from ..synth.dataset import load_jsonl
    from .trainer import StageConfig, fuse_lora, train_stage

    for name in ("steps", "batch_size", "grad_accum", "encode_batch", "checkpoint_every"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(args, name)})")
    if args.lora_rank < 0 or (args.lora_rank == 0 and not args.full):
        raise ValueError("an add-on holds a transformer LoRA, not full weights: give --lora-rank N (default 16) "
                         "or --full")
    if args.quantize_base != "none" and (args.full or not args.lora_rank):
        raise ValueError("4-bit base weights train a LoRA only: no --full, no --lora-rank 0")
    targets = tuple(t.strip() for t in args.lora_targets.split(",") if t.strip())
    if not targets:
        raise ValueError("--lora-targets names no module")
    mixed = _mixed_precision(args.mixed_precision)
    quantization = _quantization(args.quantize_base)
    dtype = torch.bfloat16 if mixed == "bf16" else None
    source = resolve_model(args.model, args.addon)
    records = load_jsonl(args.data)
    work = Path(args.work or f"{args.out}.work")
    store, base, size = encode_dataset(source, records, work, args, dtype)
    extra = {"quantization_config": quantization} if quantization is not None else {}
    pipe = SqueezePipeline.from_pretrained(source, dtype=dtype, text_encoder=base.text_encoder,
                                           processor=base.processor, vae=base.vae, **extra)
    del base
    pipe.set_progress_bar_config(disable=True)
    config = StageConfig(args.stage, args.steps, batch_size=args.batch_size, learning_rate=args.lr,
                         use_references=args.stage == "identity", lora_rank=args.lora_rank, keep_lora=True,
                         lora_targets=targets, subject_weight=args.subject_weight,
                         null_dropout=0.1 if args.stage == "identity" else 0.0, warmup_steps=args.warmup,
                         checkpoint_every=args.checkpoint_every, seed=args.seed, gradient_accumulation=args.grad_accum,
                         gradient_checkpointing=args.gradient_checkpointing, mixed_precision=mixed,
                         timestep_sampling=args.timestep_sampling, vae_reading=args.vae_reading,
                         stage_taus=(PAPER_DEFAULTS.tau1, PAPER_DEFAULTS.tau2)
                         if args.stage_aware and args.stage == "identity" else None)
    summary = train_stage(pipe, store, config, work / "stage", size,
                          on_log=lambda r: print(f"step {r['step']} loss {r['loss']:.4f} ({r['seconds']:.0f} s)",
                                                 flush=True))
    if not PartialState().is_main_process:
        return 0
    if args.full:
        if args.lora_rank:
            fuse_lora(pipe.transformer)
        pipe.save_pretrained(args.out)
    else:
        # Trained for the paper's staged inference; `squeeze eval --tau-sweep --write-default` tunes them.
        defaults = StageDefaults(PAPER_DEFAULTS.tau1, PAPER_DEFAULTS.tau2, PAPER_DEFAULTS.guidance_scale,
                                 "paper default (not yet tuned for this add-on)")
        adapter = next(iter(pipe.transformer.peft_config.values()))  # an add-on's LoRA keeps its own shape
        training = {"stage": args.stage, "steps": args.steps, "data": str(Path(args.data).resolve()),
                    "lora_rank": adapter.r, "lora_targets": sorted(adapter.target_modules), "size": size,
                    "reference_area": store.settings["reference_area"], "batch_size": args.batch_size,
                    "grad_accum": args.grad_accum, "processes": PartialState().num_processes,
                    "learning_rate": args.lr, "mixed_precision": mixed, "quantize_base": args.quantize_base,
                    "timestep_sampling": args.timestep_sampling, "stage_aware": args.stage_aware,
                    "vae_reading": args.vae_reading,
                    "final_loss": (summary.get("log") or [{}])[-1].get("loss")}
        save_addon(pipe, args.out, source, defaults, training)
    print(f"wrote {'model folder' if args.full else 'add-on'} {args.out}")
    return 0

"""``squeeze train``: the demo model's recipe, or one stage on any JSONL dataset and model folder."""
from __future__ import annotations

import argparse


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    train = subparsers.add_parser("train", help="train the demo model, or one stage on your own data")
    commands = train.add_subparsers(dest="train_command", required=True, parser_class=type(train))

    demo = commands.add_parser("demo", help="retrain the built-in demo model from scratch (resumable)")
    demo.add_argument("--out", default="resources/demo-model")
    demo.add_argument("--work", default="work/demo", help="data, checkpoints and caches; rerun to resume")
    demo.add_argument("--smoke", action="store_true", help="a few steps of every stage (a quick check)")
    demo.add_argument("--no-references", action="store_true",
                      help='the "MLLM only" control: stage 2 without reference VAE tokens (reuses data, VAE, stage 1)')
    demo.add_argument("--pairs-first", type=int, default=0, metavar="STEPS",
                      help="curriculum: the first STEPS of stage 2 on identity pairs only (measured: no gain)")
    demo.add_argument("--mllm-steps", type=int, default=0, metavar="STEPS",
                      help="stage 0b: pre-train the MLLM on scene captions and questions first (default 0: random)")
    demo.set_defaults(func=run_demo)

    stage = commands.add_parser("stage", help="stage 1 (align) or 2 (identity) on a JSONL dataset; writes an add-on")
    stage.add_argument("--model", required=True,
                       help="base to start from: model folder, cached repo id (e.g. Qwen/Qwen-Image-Edit-2509) "
                            "or add-on folder")
    stage.add_argument("--addon", default=None, metavar="DIR", help="continue training this add-on of the model")
    stage.add_argument("--data", required=True, help="dataset folder with data.jsonl")
    stage.add_argument("--stage", choices=("align", "identity"), required=True)
    stage.add_argument("--steps", type=int, required=True)
    stage.add_argument("--out", required=True,
                       help="where the add-on goes (connector + LoRA + config naming the base); see --full")
    stage.add_argument("--full", action="store_true",
                       help="write a full model folder (every component, LoRA fused) instead of an add-on")
    stage.add_argument("--work", default=None, help="checkpoints (default: OUT.work); rerun to resume")
    stage.add_argument("--batch-size", type=int, default=32)
    stage.add_argument("--lr", type=float, default=1e-3)
    stage.add_argument("--lora-rank", type=int, default=16,
                       help="rank of the transformer LoRA (default 16); 0 trains every transformer weight "
                            "(--full only)")
    stage.add_argument("--subject-weight", type=float, default=0.0)
    stage.add_argument("--size", type=int, default=None, help="training resolution (default: the model's)")
    stage.set_defaults(func=run_stage)
    return train


def run_demo(args) -> int:
    from dataclasses import replace

    from .demo import DemoRecipe, build_demo

    recipe = DemoRecipe.smoke() if args.smoke else DemoRecipe()
    report = build_demo(args.out, args.work, replace(recipe, use_references=not args.no_references,
                                                       pairs_first_steps=args.pairs_first, mllm_steps=args.mllm_steps))
    print(f"wrote {args.out} in {report['seconds']:.0f} s")
    return 0


def run_stage(args) -> int:
    from pathlib import Path

    from ..hub.addon import save_addon
    from ..hub.defaults import PAPER_DEFAULTS, StageDefaults
    from ..hub.source import resolve_model
    from ..pipeline import SqueezePipeline
    from ..synth.dataset import load_jsonl
    from .encode import encode_records
    from .trainer import StageConfig, fuse_lora, train_stage

    if args.steps < 1:
        raise ValueError(f"steps must be at least 1 (got {args.steps})")
    if args.lora_rank < 0 or (args.lora_rank == 0 and not args.full):
        raise ValueError("an add-on holds a transformer LoRA, not full weights: give --lora-rank N (default 16) "
                         "or --full")
    source = resolve_model(args.model, args.addon)
    records = load_jsonl(args.data)
    pipe = SqueezePipeline.from_pretrained(source.spec, addon=source.addon)
    pipe.set_progress_bar_config(disable=True)
    size = args.size or pipe.config.default_size
    work = Path(args.work or f"{args.out}.work")
    config = StageConfig(args.stage, args.steps, batch_size=args.batch_size, learning_rate=args.lr,
                         use_references=args.stage == "identity", lora_rank=args.lora_rank, keep_lora=True,
                         subject_weight=args.subject_weight, null_dropout=0.1 if args.stage == "identity" else 0.0)
    summary = train_stage(pipe, encode_records(pipe, records, size), config, work, size,
                          on_log=lambda r: print(f"step {r['step']} loss {r['loss']:.4f} ({r['seconds']:.0f} s)",
                                                 flush=True))
    if args.full:
        if args.lora_rank:
            fuse_lora(pipe.transformer)
        pipe.save_pretrained(args.out)
    else:
        # Trained for the paper's staged inference; `squeeze eval --tau-sweep --write-default` tunes them.
        defaults = StageDefaults(PAPER_DEFAULTS.tau1, PAPER_DEFAULTS.tau2, PAPER_DEFAULTS.guidance_scale,
                                 "paper default (not yet tuned for this add-on)")
        training = {"stage": args.stage, "steps": args.steps, "data": str(Path(args.data).resolve()),
                    "lora_rank": args.lora_rank, "size": size, "final_loss": summary.get("loss")}
        save_addon(pipe, args.out, source, defaults, training)
    print(f"wrote {'model folder' if args.full else 'add-on'} {args.out}")
    return 0

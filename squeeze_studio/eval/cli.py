"""``squeeze eval``: generate one output per example at each stage setting and score it.

``add_eval_parser(subparsers)`` registers the command on the ``squeeze`` CLI's subparsers; ``run_eval``
is its ``func``. Cheap checks (arguments, data, model folder) run before torch is imported; bad input
raises ``ValueError`` with one line, which the CLI prints as ``error: ...`` with exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..memory import MEMORY_MODES
from ..request import DEFAULT_GUIDANCE
from .defaults import METRICS
from .settings import DEFAULT_SETTING, SWEEP, parse_taus


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``eval`` on ``subparsers`` (an argparse subparsers object); it sets ``func=run_eval``."""
    p = subparsers.add_parser(
        "eval", help="evaluate a model on a JSONL dataset (SynthSubjects exact metrics; DINO/CLIP-I/CLIP-T)",
        description="Generate one output per example at each stage setting (fixed seeds) and score it: "
                    "SynthSubjects identity/adherence/copy-paste against exact targets when the records carry "
                    "their truth, DINO/CLIP-I/CLIP-T with --dino/--clip encoders.")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder with data.jsonl (or the .jsonl file)")
    p.add_argument("--model", default=None, metavar="M",
                   help="model folder, cached repo id or add-on folder (default: the built-in demo model)")
    p.add_argument("--addon", default=None, metavar="DIR", help="add-on folder for the model")
    p.add_argument("--json", required=True, metavar="OUT", help="report to write (JSON)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="first N examples only")
    p.add_argument("--steps", type=int, default=20, help="denoising steps (default 20)")
    p.add_argument("--cfg", type=float, default=DEFAULT_GUIDANCE, help=f"guidance scale (default {DEFAULT_GUIDANCE})")
    p.add_argument("--seed", type=int, default=0, help="base seed; example i uses seed + i (default 0)")
    p.add_argument("--taus", action="append", metavar="TAU1,TAU2[,text][,CACHE]",
                   help=f"a stage setting (repeatable; default {DEFAULT_SETTING.tau1:g},{DEFAULT_SETTING.tau2:g}); "
                        "',text': the VAE-focused steps read the instruction without the references; a step cache "
                        "mode last (',taylorseer', ',first-block'): generated with that cache")
    p.add_argument("--tau-sweep", action="store_true",
                   help="the trade-off grid (with any --taus added): " + ", ".join(s.name for s in SWEEP))
    p.add_argument("--figure", metavar="FIG.png", default=None, help="draw the identity/adherence trade-off")
    p.add_argument("--device", default=None, help="cuda, cuda:1, mps or cpu (default: the best present)")
    p.add_argument("--memory", default="auto", choices=MEMORY_MODES,
                   help="how the model uses GPU memory (default: auto, from free VRAM and the plan)")
    p.add_argument("--size", type=int, default=64, help="generated image side in pixels (default 64)")
    p.add_argument("--dino", default=None, metavar="PATH", help="local ViT/Dinov2 model folder: the DINO metric")
    p.add_argument("--clip", default=None, metavar="PATH", help="local CLIPModel folder: CLIP-I and CLIP-T")
    p.add_argument("--write-default", action="store_true",
                   help="store the best setting measured (by --default-metric) as the model's or add-on's default")
    p.add_argument("--default-metric", choices=sorted(METRICS), default="adherence",
                   help="what --write-default maximises (default: adherence)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--grid", metavar="GRID.png", default=None,
                   help="save reference | target | output rows for the first 12 examples")
    p.set_defaults(func=run_eval)
    return p


def settings_from_args(args) -> list:
    settings = (list(SWEEP) if args.tau_sweep else []) + [parse_taus(t) for t in args.taus or []]
    return settings or [DEFAULT_SETTING]


def add_compare_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("compare", help="two evaluated settings on the same examples: paired differences "
                                              "with 95 % intervals")
    p.add_argument("a", metavar="A.json:SETTING", help="a report from `squeeze eval --json` and one of its settings")
    p.add_argument("b", metavar="B.json:SETTING", help="the same for the other side (same data and seeds)")
    p.set_defaults(func=run_compare)
    return p


def run_compare(args) -> int:
    from .compare import compare, markdown

    print(markdown(compare(args.a, args.b), args.a, args.b))
    return 0


def check_args(args) -> None:
    """The checks that need no model: one-line ``ValueError``s. Fills in the default model."""
    from ..hub.resolve import resolve_model
    from .data import load_examples

    source = resolve_model(args.model, args.addon)
    args.model = args.model or str(source.folder)  # the report names the demo's folder
    if args.write_default and source.kind == "stock" and source.addon is None:
        raise ValueError(f"--write-default needs a Squeeze model folder or an add-on; {source.base_name} is a stock "
                         "model, which is never written to")
    if args.seed < 0:
        raise ValueError(f"--seed must not be negative (got {args.seed})")
    if args.steps < 1:
        raise ValueError(f"--steps must be at least 1 (got {args.steps})")
    if args.size <= 0:
        raise ValueError(f"--size must be positive (got {args.size})")
    if args.cfg < 0:
        raise ValueError(f"--cfg must not be negative (got {args.cfg})")
    for flag, value in (("--json", args.json), ("--figure", args.figure)):
        if value is not None and not Path(value).expanduser().resolve().parent.is_dir():
            raise ValueError(f"folder for {flag} not found: {Path(value).parent}")
    for flag, value in (("--dino", args.dino), ("--clip", args.clip)):
        if value is not None and not Path(value).expanduser().is_dir():
            raise ValueError(f"{flag} model folder not found: {value}")
    examples = load_examples(args.data, args.limit)
    if args.figure and all(ex.truth is None for ex in examples) and not (args.dino and args.clip):
        raise ValueError("--figure needs SynthSubjects truth in the data, or both --dino and --clip")


def run_eval(args) -> int:
    settings = settings_from_args(args)
    check_args(args)

    from .evaluate import evaluate  # imports torch
    from .report import markdown_table, write_json

    report = evaluate(args.data, args.model, settings, limit=args.limit, steps=args.steps, cfg=args.cfg,
                      seed=args.seed, size=args.size, device=args.device, dino=args.dino, clip=args.clip,
                      progress=not args.quiet, grid=args.grid, addon=args.addon, memory=args.memory)
    path = write_json(report, args.json)
    print(markdown_table(report))
    if args.figure:
        from .figures import plot_tradeoff

        print(f"wrote {plot_tradeoff(report, args.figure)}", file=sys.stderr)
    if args.grid:
        print(f"wrote {args.grid}", file=sys.stderr)
    print(f"wrote {path}", file=sys.stderr)
    if args.write_default:
        from .defaults import write_best_default

        print(write_best_default(report, args.default_metric, args.model, args.addon), file=sys.stderr)
    return 0

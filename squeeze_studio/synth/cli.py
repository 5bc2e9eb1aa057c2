"""`synth` commands: write a SynthSubjects dataset, or a contact sheet to look at one.

``add_synth_parser(subparsers)`` registers ``synth make`` and ``synth sheet`` on any argparse
subparsers object (the ``squeeze`` CLI wires it in); ``python -m squeeze_studio.synth`` runs the same
commands without the ``synth`` prefix.
"""
from __future__ import annotations

import argparse
import sys

from .dataset import SPLITS


def _add_commands(commands) -> None:
    make = commands.add_parser("make", help="write a dataset: images/ + data.jsonl (OmniGen2 layout)")
    make.add_argument("--count", type=int, required=True, help="number of examples")
    make.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    make.add_argument("--split", choices=SPLITS, default="train", help="subject split (default train)")
    make.add_argument("--out", required=True, help="output folder")
    make.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    make.add_argument("--identity-pairs", type=float, default=0.0, metavar="SHARE",
                      help="share of identity pairs: the reference moved or re-backgrounded (default 0)")
    make.add_argument("--copy-variant", action="store_true",
                      help="copy-rewarding ablation: targets keep the reference's pose and placement")
    make.add_argument("--style-prob", type=float, default=0.1, help="share of targets with a style change")
    make.add_argument("--held-out-prob", type=float, default=0.3,
                      help="share of test targets drawn from held-out (position, orientation) pairs")
    make.add_argument("--max-refs", type=int, default=3, choices=(1, 2, 3),
                      help="references per example: 1 to this many (default 3)")
    make.add_argument("--quiet", action="store_true", help="no progress bar")
    make.set_defaults(func=run_make)

    sheet = commands.add_parser("sheet", help="render a contact sheet (references | target | instruction)")
    sheet.add_argument("--out", required=True, help="PNG file to write")
    sheet.add_argument("--rows", type=int, default=24)
    sheet.add_argument("--seed", type=int, default=0)
    sheet.add_argument("--split", choices=SPLITS, default="train")
    sheet.add_argument("--size", type=int, default=64)
    sheet.add_argument("--identity-pairs", type=float, default=0.0, metavar="SHARE")
    sheet.add_argument("--copy-variant", action="store_true")
    sheet.set_defaults(func=run_sheet)


def add_synth_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``synth {make,sheet}`` on ``subparsers``; each leaf sets ``func``: run ``args.func(args)``."""
    parser = subparsers.add_parser("synth", help="SynthSubjects: procedural benchmark data, exact targets")
    commands = parser.add_subparsers(dest="synth_command", metavar="{make,sheet}")
    commands.required = True
    _add_commands(commands)
    return parser


def run_make(args: argparse.Namespace) -> int:
    """Write the dataset described by ``args`` with a progress bar; returns an exit status."""
    from tqdm import tqdm

    from .dataset import make_dataset

    bar = tqdm(total=args.count, unit="ex", desc=f"synth {args.split}", disable=args.quiet)
    try:
        path = make_dataset(
            args.out,
            args.count,
            args.seed,
            args.split,
            args.size,
            identity_prob=args.identity_pairs,
            copy_variant=args.copy_variant,
            style_prob=args.style_prob,
            held_out_prob=args.held_out_prob,
            max_refs=args.max_refs,
            on_progress=lambda done, total: bar.update(1),
        )
    except (OSError, ValueError) as e:
        bar.close()
        print(f"synth make: {e}", file=sys.stderr)
        return 2
    bar.close()
    if not args.quiet:
        print(f"wrote {args.count} examples to {path}")
    return 0


def run_sheet(args: argparse.Namespace) -> int:
    """Render ``args.rows`` examples to one PNG; returns an exit status."""
    from .dataset import make_example
    from .sheet import contact_sheet

    if args.rows < 1:
        print("synth sheet: --rows must be at least 1", file=sys.stderr)
        return 2
    examples = [
        make_example(args.seed, args.split, i, args.size, identity_prob=args.identity_pairs,
                     copy_variant=args.copy_variant)
        for i in range(args.rows)
    ]
    try:
        contact_sheet(examples).save(args.out)
    except (OSError, ValueError) as e:
        print(f"synth sheet: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


def run_synth(args: argparse.Namespace) -> int:
    """Dispatch a parsed ``synth`` command line."""
    return args.func(args)


def main(argv: list[str] | None = None) -> int:
    """``python -m squeeze_studio.synth {make,sheet} ...``."""
    parser = argparse.ArgumentParser(prog="python -m squeeze_studio.synth", description="SynthSubjects data")
    commands = parser.add_subparsers(dest="synth_command", metavar="{make,sheet}")
    commands.required = True
    _add_commands(commands)
    args = parser.parse_args(argv)
    return run_synth(args)

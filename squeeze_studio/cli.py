"""``squeeze``: the headless command line (``generate``, ``synth``, ``train``, ``eval``).

Bad input exits with status 2 and one line ``error: ...`` on stderr, never a traceback. Cheap checks
(arguments, model folder, reference images) run before torch is imported.
"""
from __future__ import annotations

import argparse
import sys

from .request import DEFAULT_GUIDANCE, DEFAULT_TAU1, DEFAULT_TAU2, GenerationRequest

USAGE_ERROR = 2


class UsageError(Exception):
    """Bad input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of argparse's usage block
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="squeeze", description="Squeeze Studio, headless.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    gen = commands.add_parser("generate", help="generate an image of a subject from references + instruction")
    gen.add_argument("--ref", action="append", required=True, metavar="IMG", help="reference image (repeatable)")
    gen.add_argument("--prompt", required=True, help="the instruction")
    gen.add_argument("--negative", default=" ", help="negative prompt for guidance")
    gen.add_argument("--model", default=None, help="model folder (default: the built-in demo model)")
    gen.add_argument("--out", required=True, metavar="FILE.png")
    gen.add_argument("--steps", type=int, default=20)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--tau1", type=float, default=DEFAULT_TAU1, help="above: MLLM only (no reference tokens)")
    gen.add_argument("--tau2", type=float, default=DEFAULT_TAU2, help="below: VAE-focused (no instruction)")
    gen.add_argument("--cfg", type=float, default=DEFAULT_GUIDANCE, help="guidance scale")
    gen.add_argument("--width", type=int, default=None)
    gen.add_argument("--height", type=int, default=None)
    gen.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    gen.set_defaults(func=run_generate)

    from .ablations.cli import add_ablate_parser
    from .eval.cli import add_eval_parser
    from .synth.cli import add_synth_parser
    from .train.cli import add_train_parser

    add_synth_parser(commands)
    add_train_parser(commands)
    add_eval_parser(commands)
    add_ablate_parser(commands)
    return parser


def run_generate(args) -> int:
    from .models import check_model_folder, default_model_path
    from .recipe import save_png
    from .references import load_references

    if args.model is None:
        args.model = default_model_path()
        if args.model is None:
            raise UsageError("no --model given and no built-in demo model is installed")
    folder = check_model_folder(args.model)
    request = GenerationRequest(
        instruction=args.prompt, references=[str(p) for p in args.ref], negative_prompt=args.negative,
        tau1=args.tau1, tau2=args.tau2, guidance_scale=args.cfg, num_inference_steps=args.steps,
        seed=args.seed, width=args.width, height=args.height, model=str(folder),
    )
    request.validate()
    load_references(request.references)  # fail fast, before the model loads

    from tqdm import tqdm

    from .engine import Engine
    from .events import ImageResult

    engine = Engine(folder, device=args.device, previews=False)
    events = engine.generate(request)
    with tqdm(total=request.num_inference_steps, desc="denoising", unit="step", file=sys.stderr) as bar:
        for event in events:
            if isinstance(event, ImageResult):
                path = save_png(event.image, args.out, event.request)
            else:
                bar.set_postfix_str(event.stage)
                bar.update(1)
    print(f"wrote {path} ({event.seconds:.1f} s)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (UsageError, ValueError) as error:
        print(f"error: {str(error).splitlines()[0] if str(error) else 'invalid input'}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

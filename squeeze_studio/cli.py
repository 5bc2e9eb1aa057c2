"""``squeeze``: the headless command line (``generate``, ``models``, ``synth``, ``train``, ``eval``).

Bad input exits with status 2 and one line ``error: ...`` on stderr, never a traceback. Cheap checks
(arguments, output path, model folder, instruction length, reference images) run before torch is imported.
A result that cannot be saved where asked is kept in the temp folder, and the error line says where.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from .memory.modes import DESCRIPTIONS, MEMORY_MODES
from .request import CACHE_MODES, GenerationRequest

USAGE_ERROR = 2
DEFAULT_STEPS = 20


class UsageError(Exception):
    """Bad input: reported as one line, exit status 2."""


class HelpFormatter(argparse.HelpFormatter):
    """Help strings are plain text: a ``%`` is a per cent sign ("95 % intervals"), and ``%(name)s`` (e.g.
    ``%(default)s``) the only directive. argparse reads every ``%`` as a format directive, so one per cent sign in
    any subcommand's help broke ``squeeze --help`` with a TypeError; escaping here covers every parser."""

    def _get_help_string(self, action):
        return re.sub(r"%(?!\()", "%%", super()._get_help_string(action) or "")


class _Parser(argparse.ArgumentParser):
    """Every ``squeeze`` parser: subcommands' parsers are made with this class too (``add_subparsers`` passes it
    down), so they share the help formatter and the one-line errors."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line instead of argparse's usage block
        raise UsageError(message)


def version() -> str:
    """The installed package's version (``importlib.metadata``), else the source tree's."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("squeeze-studio")
    except PackageNotFoundError:
        from . import __version__

        return __version__


class _SubjectAction(argparse.Action):
    """``--subject NAME``: the ``--ref`` images that follow belong to the subject NAME (``args.subjects``)."""

    def __call__(self, parser, namespace, value, option_string=None):
        groups = getattr(namespace, "subjects", None) or []
        namespace.subjects = [*groups, {"name": value, "refs": []}]


class _RefAction(argparse.Action):
    """``--ref IMG``: one more reference, of the subject named last (or of the one unnamed subject)."""

    def __call__(self, parser, namespace, value, option_string=None):
        groups = getattr(namespace, "subjects", None) or [{"name": "", "refs": []}]
        groups[-1]["refs"].append(value)
        namespace.subjects = groups
        namespace.ref = [*(namespace.ref or []), value]


def subjects_of(groups: list[dict] | None) -> list[dict]:
    """The request's ``subjects`` from ``--subject``/``--ref`` groups: [] for one subject, else each named group
    with its reference count. A named subject without a ``--ref`` after it is a usage error."""
    groups = [group for group in groups or [] if group["name"] or group["refs"]]
    empty = [group["name"] for group in groups if not group["refs"]]
    if empty:
        raise UsageError(f"--subject {empty[0]} has no --ref after it")
    if len(groups) < 2:
        return []
    return [{"name": group["name"] or f"subject {i + 1}", "count": len(group["refs"])}
            for i, group in enumerate(groups)]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="squeeze", description="Squeeze Studio, headless.")
    parser.add_argument("--version", action="version", version=f"squeeze {version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    gen = commands.add_parser("generate", help="generate an image of a subject from references + instruction")
    gen.add_argument("--ref", action=_RefAction, metavar="IMG",
                     help="reference image (repeatable; required without --batch)")
    gen.add_argument("--subject", action=_SubjectAction, metavar="NAME",
                     help="several subjects in one image: the --ref images after it show NAME (repeatable); the "
                          "instruction's first mention of NAME is tied to its pictures")
    gen.add_argument("--prompt", help="the instruction (required without --batch)")
    gen.add_argument("--batch", metavar="FILE.jsonl",
                     help="one generation per line, a JSON object of recipe fields (instruction, references, seed, "
                          "tau1, …; the options here fill in the rest); --out is then a folder: one PNG per line")
    gen.add_argument("--negative", default=" ", help="negative prompt for guidance")
    gen.add_argument("--model", default=None,
                     help="model folder, cached repo id (e.g. Qwen/Qwen-Image-Edit-2509) or add-on folder "
                          "(default: the built-in demo model)")
    gen.add_argument("--addon", default=None, metavar="DIR", help="add-on folder for the model (connector + LoRA)")
    gen.add_argument("--out", required=True, metavar="FILE.png",
                     help="where to write the PNG (with --batch: a folder); missing folders are created")
    gen.add_argument("--lora", action="append", default=[], metavar="PATH[:WEIGHT]", type=parse_lora,
                     help="a LoRA .safetensors file (ComfyUI/kohya, lightx2v or diffusers naming) and its weight "
                          "(default 1), repeatable; its recommended steps, guidance and taus apply unless given")
    gen.add_argument("--steps", type=int, default=None, help=f"default: a LoRA's, else {DEFAULT_STEPS}")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--tau1", type=float, default=None,
                     help="above: MLLM only (no reference tokens); default: the model's")
    gen.add_argument("--tau2", type=float, default=None,
                     help="below: VAE-focused (no instruction); default: the model's")
    gen.add_argument("--cfg", type=float, default=None, help="guidance scale; default: the model's")
    gen.add_argument("--width", type=int, default=None)
    gen.add_argument("--height", type=int, default=None)
    gen.add_argument("--device", default=None, help="cuda, cuda:1, mps or cpu (default: the best present)")
    gen.add_argument("--memory", default="auto", choices=MEMORY_MODES, metavar="MODE",
                     help="GPU memory mode (squeeze models plan shows what each needs): "
                          + "; ".join(f"{mode}: {text}" for mode, text in DESCRIPTIONS.items()))
    gen.add_argument("--weights", default=None, metavar="FORMAT",
                     help="store the transformer as fp8 (bf16 compute), int8 or nf4 (bitsandbytes/torchao), or load "
                          "it from a .gguf / .safetensors file (default: the model's own, bf16 on a GPU)")
    gen.add_argument("--cache", default="none", choices=CACHE_MODES, metavar="MODE",
                     help="step cache: reuse transformer work between steps of a stage, faster at some quality cost "
                          "(docs/models.md has the measured cost): " + ", ".join(CACHE_MODES) + " (default: none)")
    gen.add_argument("--compile", action="store_true",
                     help="torch.compile the transformer's repeated blocks (CUDA only; the first image compiles)")
    gen.set_defaults(func=run_generate)

    from .ablations.cli import add_ablate_parser
    from .eval.cli import add_compare_parser, add_eval_parser
    from .hub.cli import add_models_parser
    from .synth.cli import add_synth_parser
    from .train.cli import add_train_parser

    add_models_parser(commands)
    add_synth_parser(commands)
    add_train_parser(commands)
    add_eval_parser(commands)
    add_compare_parser(commands)
    add_ablate_parser(commands)
    return parser


def request_from_args(args, source, lora=None) -> GenerationRequest:
    """The request the options ask for (with ``--batch``, what each line's fields are laid over): a value not
    given comes from the LoRAs' recommended settings (``lora``: ``lora_settings(args.lora)`` when already read),
    then the model's stage defaults, then ``DEFAULT_STEPS``."""
    defaults = source.stage_defaults
    lora = lora if lora is not None else lora_settings(args.lora)
    pick = lambda given, *options: next(o for o in (given, *options) if o is not None)  # noqa: E731
    return GenerationRequest(
        instruction=args.prompt or "", references=[str(p) for p in args.ref or []], negative_prompt=args.negative,
        tau1=pick(args.tau1, lora.tau1, defaults.tau1), tau2=pick(args.tau2, lora.tau2, defaults.tau2),
        guidance_scale=pick(args.cfg, lora.guidance_scale, defaults.guidance_scale),
        num_inference_steps=pick(args.steps, lora.steps, DEFAULT_STEPS), seed=args.seed, width=args.width,
        height=args.height, loras=[{"path": path, "weight": weight} for path, weight in args.lora],
        subjects=subjects_of(getattr(args, "subjects", None)), cache=args.cache, compile=args.compile,
    )


def run_generate(args) -> int:
    from .hub.resolve import resolve_model
    from .recipe import save_png
    from .references import load_references

    if args.batch:
        from .batch import run_batch

        source = resolve_model(args.model, args.addon)  # never touches the network
        return run_batch(args, source, request_from_args(args, source), check_prompt_length, save_or_keep)
    if not args.ref or args.prompt is None:
        raise UsageError("the following arguments are required: "
                         + ", ".join(name for name, value in (("--ref", args.ref), ("--prompt", args.prompt))
                                     if not value and value != ""))
    out = check_output_path(args.out)
    source = resolve_model(args.model, args.addon)
    defaults, lora = source.stage_defaults, lora_settings(args.lora)
    request = request_from_args(args, source, lora)
    request.validate()
    check_prompt_length(source.folder, request.instruction)  # fail fast, before the model loads
    check_prompt_length(source.folder, request.negative_prompt, "negative prompt")
    load_references(request.references)

    from tqdm import tqdm

    from .engine import Engine
    from .events import ImageResult

    engine = Engine(source, device=args.device, previews=False, memory=args.memory, weights=args.weights)
    plan = engine.plan_for(request)
    print(f"memory plan: {plan.summary()}", file=sys.stderr)
    events = engine.generate(request)
    with tqdm(total=request.num_inference_steps, desc="denoising", unit="step", file=sys.stderr) as bar:
        for event in events:
            if isinstance(event, ImageResult):
                path = save_or_keep(event, out, save_png)
            else:
                bar.set_postfix_str(event.stage)
                bar.update(1)
    used = ""
    if None in (args.tau1, args.tau2, args.cfg):
        used = (f"; model defaults tau1 {request.tau1:g}, tau2 {request.tau2:g}, cfg {request.guidance_scale:g}: "
                f"{defaults.origin}")
    if lora.origin:
        used += f"; LoRA settings ({request.num_inference_steps} steps): {lora.origin}"
    peak = engine.measured_peak()
    if peak is not None:
        used += f"; peak VRAM {peak / 2**30:.1f} GiB measured, {plan.vram_bytes / 2**30:.1f} GiB planned"
    passes = event.info.get("forward_passes")
    if passes is not None:
        full = event.info.get("full_passes", passes)
        used += f"; {passes} forward passes" + (f", {full} in full" if full != passes else "")
    if event.info.get("compile"):
        used += f"; {event.info['compile']}"
    print(f"wrote {path} ({event.seconds:.1f} s{used})", file=sys.stderr)
    return 0


def parse_lora(text: str) -> tuple[str, float]:
    """``PATH[:WEIGHT]`` -> (path, weight); the weight is whatever follows the last colon when it is a number, so
    ``C:\\loras\\a.safetensors`` is a path."""
    path, colon, weight = text.rpartition(":")
    if colon and path and not path.endswith(("\\", "/")):
        try:
            return path, float(weight)
        except ValueError:
            pass
    return text, 1.0


def lora_settings(loras: list[tuple[str, float]]):
    """The steps, guidance and taus the given LoRAs recommend (the first that names each wins; weight 0 counts
    for nothing); checks every file is a .safetensors LoRA before the model loads."""
    from .hub.defaults import LoraDefaults
    from .hub.lora_files import check_lora_file, lora_defaults

    found: dict = {}
    origins = []
    for path, weight in loras:
        check_lora_file(path)
        if weight == 0:
            continue
        defaults = lora_defaults(path)
        for key in ("steps", "guidance_scale", "tau1", "tau2"):
            if getattr(defaults, key) is not None and key not in found:
                found[key] = getattr(defaults, key)
                if defaults.origin not in origins:
                    origins.append(defaults.origin)
    return LoraDefaults(**found, origin="; ".join(origins))


def check_output_path(given: str) -> Path:
    """``--out`` checked before any work: a .png file name whose folder exists or is created here, before the
    model loads (a folder that cannot be created would otherwise surface only at the save, after the whole run).
    ``UsageError`` with one line otherwise."""
    out = Path(given).expanduser()
    try:
        _check_output_path(out)
        out.absolute().parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a dangling symlink on the way, a name too long, a read-only or odd filesystem
        reason = error.strerror or type(error).__name__
        if isinstance(error, FileExistsError):
            reason = "a file or a broken link of that name is in the way"
        raise UsageError(f"--out cannot be created: {out.absolute().parent} ({reason})") from None
    return out


def _check_output_path(out: Path) -> None:
    if out.is_dir():
        raise UsageError(f"--out is a folder: {out}; give a file name, e.g. {out / 'result.png'}")
    if out.exists() and not out.is_file():
        raise UsageError(f"--out exists and is not a regular file: {out}")
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out must name a .png file (the recipe is stored in PNG text chunks): {out}")
    folder = out.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"--out cannot be created: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--out cannot be written: no permission to write in {folder}")


def check_prompt_length(model_folder: Path, text: str, what: str = "instruction") -> None:
    """The engine's instruction checks (``JointMLLMEncoder.check_instruction``) done before the model loads,
    with the model's own ``tokenizer.json`` and no torch: too many tokens, or a reserved token. Text of at most
    ``MAX_INSTRUCTION_TOKENS`` bytes and no ``<|`` needs no tokenizer (a token is at least one byte)."""
    from .request import MAX_INSTRUCTION_TOKENS

    if "<|" not in text and len(text.encode("utf-8", "surrogatepass")) <= MAX_INSTRUCTION_TOKENS:
        return
    files = [model_folder / sub / "tokenizer.json" for sub in ("processor", "tokenizer")]
    file = next((f for f in files if f.is_file()), None)
    if file is None:
        return  # the engine checks with the loaded processor
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(file))
    except Exception:  # noqa: BLE001 - an odd tokenizer file: the engine checks with the loaded processor
        return
    reserved = sorted(t.content for t in tokenizer.get_added_tokens_decoder().values() if t.special)
    found = next((token for token in reserved if token in text), None)
    if found:
        raise UsageError(f"the {what} contains {found}, which the model reserves for its prompt; remove it")
    if len(text) > MAX_INSTRUCTION_TOKENS * 1024:
        raise UsageError(f"the {what} is too long: {len(text):,} characters; the limit is "
                         f"{MAX_INSTRUCTION_TOKENS:,} tokens")
    count = len(tokenizer.encode(text, add_special_tokens=False).ids)
    if count > MAX_INSTRUCTION_TOKENS:
        raise UsageError(f"the {what} is too long: {count:,} tokens ({len(text):,} characters); the limit is "
                         f"{MAX_INSTRUCTION_TOKENS:,} tokens")


def save_or_keep(event, out: Path, save_png) -> Path:
    """Save the result to ``out``; if that fails (disk full, permission, the folder gone), keep it in the temp
    folder and raise ``UsageError`` naming both. Nothing made is lost."""
    try:
        return save_png(event.image, out, event.request, event.info, event.copy_paste)
    except OSError as error:
        reason = error.strerror or str(error).splitlines()[0] or type(error).__name__
        import tempfile
        import time

        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-seed{event.request.seed}"
        kept = Path(tempfile.gettempdir()) / f"squeeze-{stamp}.png"
        try:
            save_png(event.image, kept, event.request, event.info, event.copy_paste)
        except OSError as second:
            raise UsageError(f"cannot save {out} ({reason}), nor a copy in {kept.parent} "
                             f"({second.strerror or second}): the result is lost") from None
        raise UsageError(f"cannot save {out} ({reason}); the result was kept at {kept}") from None


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

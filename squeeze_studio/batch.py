"""``squeeze generate --batch FILE.jsonl --out DIR``: one generation per line of a JSONL file, one PNG each.

A line is a JSON object of recipe fields (``GenerationRequest``: instruction, references, seed, tau1, tau2,
guidance_scale, num_inference_steps, width, height, negative_prompt). A field a line leaves out takes the command
line's value (``--seed``, ``--steps``, ...; τ and guidance: the model's defaults). Relative reference paths are
read from the JSONL file's folder. Every line is checked before the model loads; one line ``error: line N: ...``
otherwise. Line N writes ``DIR/NNNN.png``; a rerun skips a line whose PNG is already there with the same recipe,
so a batch cut short resumes.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .request import GenerationRequest

LINE_FIELDS = {"instruction", "references", "negative_prompt", "tau1", "tau2", "guidance_scale",
               "num_inference_steps", "seed", "width", "height", "batch_count", "model", "addon"}


class BatchError(ValueError):
    """A bad batch file: one line, exit status 2."""


def read_batch(path: Path, base: GenerationRequest) -> list[GenerationRequest]:
    """The requests of ``path``, each ``base`` with the line's fields; ``BatchError`` names the first bad line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BatchError(f"--batch cannot be read: {path} ({getattr(error, 'strerror', None) or error})") from None
    requests = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            requests.append(_read_line(line, number, path.parent, base))
    if not requests:
        raise BatchError(f"--batch has no requests: {path} (one JSON object per line)")
    return requests


def _read_line(line: str, number: int, folder: Path, base: GenerationRequest) -> GenerationRequest:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise BatchError(f"line {number}: not JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise BatchError(f"line {number}: not a JSON object")
    unknown = sorted(set(data) - LINE_FIELDS)
    if unknown:
        raise BatchError(f"line {number}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(LINE_FIELDS))})")
    for key in ("model", "addon"):  # one engine for the whole batch: a recipe's own is fine when it is the same
        if data.pop(key, None) not in (None, "", getattr(base, key)):
            raise BatchError(f"line {number}: {key} differs from --{key}; run one batch per {key}")
    if data.get("batch_count", 1) != 1:
        raise BatchError(f"line {number}: batch_count must be 1 (one PNG per line; repeat the line with another "
                         f"seed)")
    if isinstance(data.get("references"), list):
        data["references"] = [str(folder / p) if isinstance(p, str) and not Path(p).is_absolute() else p
                              for p in data["references"]]
    try:
        request = GenerationRequest.from_untrusted({**base.to_dict(), **data})
        request.validate()
    except (ValueError, TypeError) as error:
        raise BatchError(f"line {number}: {str(error).splitlines()[0]}") from None
    if not request.references:
        raise BatchError(f"line {number}: no references")
    return request.replace(model="", addon="")  # the engine is the command line's


def output_paths(out: Path, count: int) -> list[Path]:
    width = max(4, len(str(count)))
    return [out / f"{index:0{width}d}.png" for index in range(1, count + 1)]


def already_written(path: Path, request: GenerationRequest) -> bool:
    """The PNG of an earlier run of the same line (same recipe); ``BatchError`` for any other file there."""
    if not path.exists():
        return False
    from .recipe import read_recipe

    try:
        recipe = read_recipe(path)
    except Exception:  # noqa: BLE001 - not a PNG of ours: never overwritten
        recipe = None
    asked = {k: v for k, v in request.to_dict().items() if v is not None and k not in ("model", "addon")}
    if recipe is not None and asked.items() <= recipe.to_dict().items():  # the engine fills in the size
        return True
    raise BatchError(f"{path} exists and holds another image; give an empty --out folder")


def run_batch(args, source, base, check_prompt_length, save_or_keep) -> int:
    """The ``generate --batch`` command: ``cli.run_generate`` hands over its parsed arguments, the resolved model,
    the request the options ask for (each line's fields are laid over it) and its checks."""
    from .recipe import save_png
    from .references import load_references

    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise BatchError(f"--out must be a folder with --batch: {out} is a file")
    base = base.replace(model=args.model or "", addon=args.addon or "")
    requests = read_batch(Path(args.batch).expanduser(), base)
    for number, request in enumerate(requests, 1):
        try:
            check_prompt_length(source.folder, request.instruction)
            check_prompt_length(source.folder, request.negative_prompt, "negative prompt")
            load_references(request.references)
        except ValueError as error:
            raise BatchError(f"line {number}: {str(error).splitlines()[0]}") from None
    paths = output_paths(out, len(requests))
    todo = [(path, request) for path, request in zip(paths, requests, strict=True)
            if not already_written(path, request)]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BatchError(f"--out cannot be created: {out} ({error.strerror or error})") from None
    if len(todo) < len(requests):
        print(f"{len(requests) - len(todo)} of {len(requests)} already written, skipped", file=sys.stderr)
    if not todo:
        return 0

    from .engine import Engine
    from .events import ImageResult

    engine = Engine(source, device=args.device, previews=False, memory=args.memory, weights=args.weights)
    for done, (path, request) in enumerate(todo, 1):
        for event in engine.generate(request):
            if isinstance(event, ImageResult):
                saved = save_or_keep(event, path, save_png)
                print(f"[{done}/{len(todo)}] wrote {saved} ({event.seconds:.1f} s)", file=sys.stderr)
    return 0

"""``squeeze models``: list, download, verify, add and remove models, and plan their memory.

``add_models_parser(subparsers)`` registers the command on the ``squeeze`` CLI's subparsers. Bad input raises
``ValueError`` with one line, which the CLI prints as ``error: ...`` with exit status 2. The network is used by
``download`` only.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading

CANCELLED = 130  # the shell's status for Ctrl+C


def add_models_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``models`` (and its subcommands) on ``subparsers``; each sets ``func``."""
    p = subparsers.add_parser(
        "models", help="list, download, verify and remove models",
        description="The models on this machine: the built-in demo, Hugging Face cache entries and added folders.")
    commands = p.add_subparsers(dest="models_command", required=True, parser_class=type(p),
                                metavar="{list,download,verify,add,remove,plan,lora-defaults}")

    ls = commands.add_parser("list", help="what is installed: where, size on disk, complete or not, kind")
    ls.set_defaults(func=run_list)

    get = commands.add_parser("download", help="download a known model or a repo id into the Hugging Face cache",
                              description="Resumable: complete files are kept, run it again after a stop.")
    get.add_argument("name", metavar="NAME_OR_REPO",
                     help="registry name of a model or LoRA (squeeze models list shows them) or repo id")
    get.add_argument("--revision", default=None, help="branch, tag or commit (default: the registry's, else main)")
    get.add_argument("--quiet", action="store_true", help="no progress bar")
    get.set_defaults(func=run_download)

    check = commands.add_parser("verify", help="check a model: files, safetensors headers, shapes against configs")
    check.add_argument("spec", metavar="SPEC", help="model folder or cached repo id (Qwen/Qwen-Image-Edit-2509)")
    check.set_defaults(func=run_verify)

    add = commands.add_parser("add", help="add a model folder to the list (verified first)")
    add.add_argument("folder", metavar="FOLDER")
    add.set_defaults(func=run_add)

    rm = commands.add_parser("remove", help="delete a cached model, or forget an added folder (its files stay)")
    rm.add_argument("name", metavar="NAME", help="registry name, repo id, or an added folder")
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(func=run_remove)

    from ..memory.modes import MEMORY_MODES

    plan = commands.add_parser(
        "plan", help="predicted peak GPU memory and RAM per memory mode, before anything loads",
        description="From the configs and the weights' headers; nothing loads. A known model that is not downloaded "
                    "is planned from its architecture's reference configs.")
    plan.add_argument("spec", metavar="MODEL", nargs="?", default="",
                      help="model folder, cached repo id, registry name or add-on (default: the built-in demo)")
    plan.add_argument("--addon", default=None, metavar="DIR", help="add-on folder for the model")
    plan.add_argument("--memory", default=None, choices=MEMORY_MODES, help="one mode (default: all of them)")
    plan.add_argument("--width", type=int, default=None, help="output width (default: the model's size)")
    plan.add_argument("--height", type=int, default=None, help="output height (default: the model's size)")
    plan.add_argument("--references", type=int, default=2, help="number of references (default 2)")
    plan.add_argument("--device", default=None,
                      help="cuda, cuda:1, mps or cpu (default: the best present, or cuda on a machine without a GPU)")
    plan.add_argument("--weights", default=None, metavar="FORMAT", help="fp8, int8, nf4 or a transformer file")
    plan.set_defaults(func=run_plan)

    lora = commands.add_parser(
        "lora-defaults", help="show or write the settings a LoRA recommends (steps, guidance, taus, scheduler)",
        description="Written to FILE's sidecar NAME.squeeze.json (the LoRA file is not rewritten); without settings, "
                    "shows the ones in use and where they come from.")
    lora.add_argument("file", metavar="FILE.safetensors")
    lora.add_argument("--steps", type=int, default=None)
    lora.add_argument("--guidance", type=float, default=None, help="guidance scale (1 = no CFG)")
    lora.add_argument("--tau1", type=float, default=None)
    lora.add_argument("--tau2", type=float, default=None)
    for flag, kind in (("shift", float), ("base-shift", float), ("max-shift", float), ("shift-terminal", _terminal),
                       ("time-shift-type", str), ("dynamic-shifting", _on_off)):
        lora.add_argument(f"--{flag}", type=kind, default=argparse.SUPPRESS, metavar=flag.split("-")[-1].upper(),
                          help=f"scheduler {flag.replace('-', '_')}" + (" (on/off)" * (kind is _on_off)))
    lora.set_defaults(func=run_lora_defaults)
    return p


def _terminal(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def _on_off(text: str) -> bool:
    if text.lower() not in ("on", "off"):
        raise argparse.ArgumentTypeError("give on or off")
    return text.lower() == "on"


def run_lora_defaults(args) -> int:
    from dataclasses import replace

    from .defaults import LoraDefaults
    from .lora_files import lora_defaults, sidecar_path, write_sidecar

    keys = ("shift", "base_shift", "max_shift", "shift_terminal", "time_shift_type", "dynamic_shifting")
    scheduler = {("use_" + k if k == "dynamic_shifting" else k): getattr(args, k) for k in keys if hasattr(args, k)}
    given = {k: getattr(args, k) for k in ("steps", "tau1", "tau2") if getattr(args, k) is not None}
    if args.guidance is not None:
        given["guidance_scale"] = args.guidance
    current = lora_defaults(args.file)
    if given or scheduler:
        current = replace(current, **given, scheduler={**current.scheduler, **scheduler})
        path = write_sidecar(args.file, LoraDefaults.from_dict(current.to_dict(), "the given values"))
        print(f"wrote {path}")
    origin = f" ({current.origin})" if current.origin and not (given or scheduler) else ""
    text = json.dumps(current.to_dict()) if current.to_dict() else "none: the model's own settings apply"
    print(f"{sidecar_path(args.file).name.removesuffix('.squeeze.json')}: {text}{origin}")
    return 0


def run_list(args) -> int:
    from .manager import human_size, list_installed
    from .registry import KNOWN_MODELS

    models = list_installed()
    rows = [("NAME", "WHERE", "SIZE", "STATUS", "KIND")]
    for m in models:
        where = m.location + (f"@{m.revision[:12]}" if m.location == "cache" and m.revision else "")
        rows.append((m.name, where, human_size(m.size_bytes), "complete" if m.complete else m.problem, m.kind or "?"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    cached = {m.repo_id.lower() for m in models if m.repo_id}
    missing = [k for k in KNOWN_MODELS if k.repo_id and k.repo_id.lower() not in cached]
    if missing:
        print()
    for k in missing:
        print(f"not installed: {k.key} ({k.repo_id}, ~{human_size(k.download_bytes)}): squeeze models download {k.key}")
    from .registry import KNOWN_LORAS

    print()
    for lora in KNOWN_LORAS:
        print(f"LoRA {lora.key}: {lora.title}, ~{human_size(lora.download_bytes)}: squeeze models download {lora.key}")
    return 0


def run_download(args) -> int:
    from .manager import DownloadCancelled, check_space, download, download_size, human_size, repo_for
    from .registry import known_lora

    lora = known_lora(args.name)
    repo_id, revision = (lora.repo_id, args.revision or lora.revision) if lora else repo_for(args.name, args.revision)
    files = [lora.filename] if lora else None
    needed = download_size(repo_id, revision, files)
    free, where = check_space(needed)
    print(f"{repo_id}@{revision}: {human_size(needed)} to download, {human_size(free)} free on {where}",
          file=sys.stderr)
    bar, lock = None, threading.Lock()
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=needed, unit="B", unit_scale=True, desc=repo_id, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            with lock:
                bar.update(done - bar.n)

    import logging

    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with logging_redirect_tqdm([logging.getLogger(download.__module__)]):  # "stopping…" on its own line
            path = download(repo_id, revision, progress=progress, needed=needed, files=files)
    except (KeyboardInterrupt, DownloadCancelled):
        if bar is not None:
            bar.close()
        print("cancelled: complete files stay in the cache, nothing half-written; "
              "run the same command to fetch the rest", file=sys.stderr)
        return CANCELLED
    if bar is not None:
        bar.close()
    if lora:
        path = path / lora.filename
        print(f"use it with: squeeze generate --lora {path} (it brings {lora.defaults.steps} steps, guidance "
              f"{lora.defaults.guidance_scale:g} and its scheduler settings)", file=sys.stderr)
    print(f"downloaded {repo_id} to {path}", file=sys.stderr)
    return 0


def run_verify(args) -> int:
    from .manager import folder_size, human_size
    from .resolve import resolve_model
    from .verify import verify_model

    source = resolve_model(args.spec)
    problems = verify_model(source.folder)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise ValueError(problems[0] + more)
    print(f"ok: {source.name} ({source.kind}, {human_size(folder_size(source.folder))}, {source.folder})")
    return 0


def run_add(args) -> int:
    from .manager import add_user_folder
    from .verify import check_model

    check_model(args.folder)
    add_user_folder(args.folder)
    print(f"added {args.folder}")
    return 0


def run_remove(args) -> int:
    from pathlib import Path

    from .manager import cache_folder, folder_size, human_size, remove_cached, remove_user_folder, user_folders

    path = Path(args.name).expanduser()
    if path.exists() and path.resolve() in user_folders():
        remove_user_folder(path)
        print(f"forgot {path.resolve()} (its files stay)")
        return 0
    folder = cache_folder(args.name)
    if not args.yes and not _confirm(f"delete {folder.name} from the Hugging Face cache "
                                     f"({human_size(folder_size(folder))}, {folder})? [y/N] "):
        print("nothing removed")
        return 1
    freed = remove_cached(args.name)
    print(f"removed {folder.name}: {human_size(freed)} freed")
    return 0


def run_plan(args) -> int:
    from ..memory.devices import available_devices
    from ..memory.modes import PLANNED_MODES
    from ..memory.plan import plan_memory
    from .reference_configs import QWEN_IMAGE_EDIT_PLUS
    from .registry import known_model
    from .resolve import resolve_model
    from .source import FAMILY

    if args.references < 0:
        raise ValueError(f"--references must not be negative (got {args.references})")
    try:
        source, where = resolve_model(args.spec, args.addon), ""
        name = source.name
    except ValueError:
        known = known_model(args.spec)
        if known is None or known.repo_id is None or known.family != FAMILY or args.addon:
            raise
        source, where, name = QWEN_IMAGE_EDIT_PLUS, " (not downloaded: its reference configs)", known.repo_id
    device = args.device or next(d for d in available_devices() + ["cuda"] if d != "cpu")

    def plan(mode):
        return plan_memory(source, mode, args.height, args.width, args.references, device, args.weights)

    modes = [args.memory] if args.memory else [m for m in PLANNED_MODES if m != "multi-gpu" or "cuda" in device]
    plans = [plan(mode) for mode in modes]
    first = plans[0]
    storage = f"transformer {args.weights}, " if args.weights else ""
    print(f"{name}{where}: {first.width}x{first.height}, {first.references} references, {storage}{first.dtype} on "
          f"{device}")
    print("parameters: " + ", ".join(f"{role} {_count(n)}" for role, n in first.parameters.items()))
    rows = [("MODE", "VRAM", "RAM", "FITS")]
    for p in plans:
        fits = "?" if p.free_vram is None and device != "cpu" else "yes" if p.fits else "no"
        vram = "-" if device == "cpu" else f"{p.vram_bytes / 2**30:.1f} GiB" + (" per card" * (p.mode == "multi-gpu"))
        pinning = " (pinned as it moves: RAM is short)" if p.low_cpu_mem_usage else ""
        rows.append((p.mode, vram, f"{p.ram_bytes / 2**30:.1f} GiB{pinning}", fits))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
    if not args.memory:
        known = first.free_vram is not None or device == "cpu"
        print(f"auto: {plan('auto').mode}" if known else "auto: chosen from the free VRAM when the model loads")
    free = [f"{first.free_ram / 2**30:.1f} GiB RAM available"]
    if device != "cpu":
        free.insert(0, "free VRAM unknown (no such device here)" if first.free_vram is None
                    else f"{first.free_vram / 2**30:.1f} GiB VRAM free")
    print(f"{', '.join(free)}; predicted from the configs, not measured (squeeze generate prints the measured peak)")
    return 0


def _count(parameters: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if parameters >= scale:
            return f"{parameters / scale:.2f}{unit}"
    return str(parameters)


def _confirm(question: str) -> bool:
    print(question, end="", flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("y", "yes")

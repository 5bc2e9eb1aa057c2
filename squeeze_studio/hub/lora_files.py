"""LoRA files as people have them, before anything loads: what a file is called, what it recommends, its hash.

- A LoRA is one ``.safetensors`` file; any other suffix (``.bin``, ``.pt``, ``.ckpt``: pickles, which can run code
  when loaded) is refused in one line and never opened.
- Its defaults (``LoraDefaults``: steps, guidance, τ1/τ2, scheduler shift settings) come from, first to last: a
  sidecar ``NAME.squeeze.json`` beside the file (``squeeze models lora-defaults`` writes it), the file's
  safetensors ``__metadata__`` entry ``squeeze_studio.lora_defaults`` (a JSON string), or the registry when the
  file name is a known distillation LoRA's (``registry.KNOWN_LORAS``).
- ``file_sha256``: the file's content hash for the PNG recipe, computed once per path, modification time and size.

Plain Python, no torch: the window and the request read these before torch loads.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

SIDECAR_SUFFIX = ".squeeze.json"
METADATA_KEY = "squeeze_studio.lora_defaults"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own cap on a header
# The FlowMatchEulerDiscreteScheduler settings a LoRA may set: its noise schedule, nothing else.
SCHEDULER_KEYS = {"shift": float, "base_shift": float, "max_shift": float, "use_dynamic_shifting": bool,
                  "time_shift_type": str, "shift_terminal": (float, type(None)), "base_image_seq_len": int,
                  "max_image_seq_len": int}


@dataclass(frozen=True)
class LoraDefaults:
    """What a LoRA recommends; ``None`` leaves the model's (or the user's) own value."""

    steps: int | None = None
    guidance_scale: float | None = None
    tau1: float | None = None
    tau2: float | None = None
    scheduler: dict = field(default_factory=dict, hash=False)  # SCHEDULER_KEYS only
    origin: str = ""

    def to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if v not in (None, {}, "")}
        data.pop("origin", None)
        return data

    @classmethod
    def from_dict(cls, data, origin: str) -> LoraDefaults:
        """``ValueError`` in one line naming ``origin`` for a key or value out of place."""
        if not isinstance(data, dict):
            raise ValueError(f"LoRA defaults in {origin} are not a JSON object")
        unknown = sorted(set(data) - {"steps", "guidance_scale", "tau1", "tau2", "scheduler"})
        if unknown:
            raise ValueError(f"LoRA defaults in {origin}: unknown key {unknown[0]!r}")
        steps = data.get("steps")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 1000):
            raise ValueError(f"LoRA defaults in {origin}: steps must be a whole number from 1 to 1000")
        numbers = {}
        for key in ("guidance_scale", "tau1", "tau2"):
            value = data.get(key)
            top = math.inf if key == "guidance_scale" else 1.0
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not 0 <= value <= top or not math.isfinite(value)):
                raise ValueError(f"LoRA defaults in {origin}: {key} out of range (got {value!r:.40})")
            numbers[key] = None if value is None else float(value)
        if None not in (numbers["tau1"], numbers["tau2"]) and numbers["tau2"] > numbers["tau1"]:
            raise ValueError(f"LoRA defaults in {origin}: tau2 must not exceed tau1")
        scheduler = data.get("scheduler") or {}
        if not isinstance(scheduler, dict):
            raise ValueError(f"LoRA defaults in {origin}: scheduler is not an object")
        for key, value in scheduler.items():
            kind = SCHEDULER_KEYS.get(key)
            if kind is None:
                raise ValueError(f"LoRA defaults in {origin}: scheduler setting {key!r} is not one a LoRA may set")
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or kind is not bool and isinstance(value, bool):
                raise ValueError(f"LoRA defaults in {origin}: scheduler {key} has the wrong type")
        return cls(steps, numbers["guidance_scale"], numbers["tau1"], numbers["tau2"], dict(scheduler), origin)


def check_lora_file(path: str | os.PathLike) -> Path:
    """``path`` if it is an existing ``.safetensors`` file; ``ValueError`` in one line otherwise (a pickle is never
    opened)."""
    path = Path(path).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ValueError(f"{path.name} is a pickled checkpoint ({path.suffix}): LoRAs load from .safetensors only, "
                         f"since unpickling can run code; convert it first")
    if path.suffix.lower() != ".safetensors":
        raise ValueError(f"{path.name} is not a .safetensors file: LoRAs load from .safetensors only")
    if not path.is_file():
        raise ValueError(f"LoRA file not found: {path}")
    return path


def read_metadata(path: Path) -> dict[str, str]:
    """The safetensors header's ``__metadata__`` (strings only), read without torch; ``ValueError`` for a file
    that is not safetensors inside."""
    try:
        with open(path, "rb") as handle:
            size = struct.unpack("<Q", handle.read(8))[0]
            if size > MAX_HEADER_BYTES:
                raise ValueError
            header = json.loads(handle.read(size))
    except (OSError, ValueError, struct.error):
        raise ValueError(f"{path.name} is not a readable safetensors file") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return {k: v for k, v in metadata.items() if isinstance(v, str)} if isinstance(metadata, dict) else {}


def sidecar_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name.removesuffix(path.suffix) + SIDECAR_SUFFIX)


def lora_defaults(path: str | os.PathLike) -> LoraDefaults:
    """The defaults ``path`` recommends (sidecar, then metadata, then the registry by file name); empty if none."""
    from .registry import known_lora_file

    path = check_lora_file(path)
    sidecar = sidecar_path(path)
    if sidecar.is_file():
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ValueError(f"unreadable {sidecar.name} beside {path.name}") from None
        return LoraDefaults.from_dict(data, sidecar.name)
    text = read_metadata(path).get(METADATA_KEY)
    if text is not None:
        try:
            data = json.loads(text)
        except ValueError:
            raise ValueError(f"{path.name}: its {METADATA_KEY} metadata is not JSON") from None
        return LoraDefaults.from_dict(data, f"{path.name} metadata")
    known = known_lora_file(path.name)
    return known.defaults if known is not None else LoraDefaults()


def write_sidecar(path: str | os.PathLike, defaults: LoraDefaults) -> Path:
    """Write ``defaults`` beside the LoRA file ``path`` (the file itself is not rewritten)."""
    path = check_lora_file(path)
    LoraDefaults.from_dict(defaults.to_dict(), "the given values")  # checked before writing
    target = sidecar_path(path)
    target.write_text(json.dumps(defaults.to_dict(), indent=2) + "\n", encoding="utf-8")
    return target


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of the file's bytes, remembered by (real path, mtime, size): a 300 MB LoRA is hashed once."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    key = (real, stat.st_mtime_ns, stat.st_size)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(real, "rb") as handle:
            for block in iter(lambda: handle.read(4 * 2**20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def lora_name(path: str | os.PathLike) -> str:
    """The name a LoRA goes by when none is given: its file's stem, as A1111 and ComfyUI show it."""
    return Path(path).name.removesuffix(Path(path).suffix)

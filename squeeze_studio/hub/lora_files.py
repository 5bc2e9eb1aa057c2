"""LoRA files as people have them, before anything loads: what a file is called, what it recommends, its hash.

- A LoRA is one ``.safetensors`` file; any other suffix (``.bin``, ``.pt``, ``.ckpt``: pickles, which can run code
  when loaded) is refused in one line and never opened.
- Its defaults (``defaults.LoraDefaults``: steps, guidance, τ1/τ2, scheduler shift settings) come from, first to last: a
  sidecar ``NAME.squeeze.json`` beside the file (``squeeze models lora-defaults`` writes it), the file's
  safetensors ``__metadata__`` entry ``squeeze_studio.lora_defaults`` (a JSON string), or the registry when the
  file name is a known distillation LoRA's (``registry.KNOWN_LORAS``).
- ``file_sha256``: the file's content hash for the PNG recipe, computed once per path, modification time and size.

Plain Python, no torch: the window and the request read these before torch loads.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

from .defaults import LoraDefaults
from .registry import known_lora_file

SIDECAR_SUFFIX = ".squeeze.json"
METADATA_KEY = "squeeze_studio.lora_defaults"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own cap on a header
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

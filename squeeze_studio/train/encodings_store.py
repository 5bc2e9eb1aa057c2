"""Training encodings on disk: written once, shard by shard (resumable, split across processes), and read
lazily per batch, so memory does not grow with the dataset.

At the real backbone's scale one example's all-layer MLLM states (instruction and negative prompt, 29 layers x
a few hundred tokens x 3584) are hundreds of MiB; a dataset of them does not fit in RAM. The states are stored
as bfloat16 (float32's range: Qwen's large activations overflow float16), latents and masks as they are.

    folder/store.json                 what the encodings were made from (data digest, size, model, dtype) + layout
    folder/null.safetensors           the null conditioning's states
    folder/shard-00000.safetensors    examples [0, shard_size): "<i>.target", "<i>.references", "<i>.positive", ...
    folder/shard-00000.json           that shard's reference grids, written last: its presence marks the shard done
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from .encode import EncodedExample, bucket_key, encode_chunk, null_states

FORMAT = 2  # 2: the instruction read alone ("text", "text_image") is stored too
STATES_DTYPE = torch.bfloat16
FIELDS = ("target", "references", "subject", "positive", "positive_image", "negative", "negative_image", "text",
          "text_image")
_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def _digest(records: list[dict]) -> str:
    keys = ("instruction", "input_images", "output_image", "output_mask")
    text = json.dumps([{k: r.get(k) for k in keys} for r in records], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()


def store_settings(pipe, records: list[dict], size: int, reference_area: int | None = None, model: str | None = None,
                   shard_size: int = 8, states_dtype: torch.dtype = STATES_DTYPE) -> dict:
    """``store.json``'s content: a store made with other settings is refused, not silently mixed."""
    return {"format": FORMAT, "count": len(records), "records": _digest(records), "size": size,
            "reference_area": reference_area or size * size,
            "condition_image_area": int(pipe.config.condition_image_area),
            "prompt_template": hashlib.sha1(pipe.config.prompt_template.encode()).hexdigest(),
            "model": model, "states_dtype": str(states_dtype).removeprefix("torch."), "shard_size": shard_size}


def _write_atomically(path: Path, write) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def _shard(folder: Path, index: int) -> Path:
    return folder / f"shard-{index:05d}.safetensors"


def _check_settings(folder: Path, settings: dict) -> None:
    found = json.loads((folder / "store.json").read_text())
    differ = [key for key in sorted(set(found) | set(settings)) if found.get(key) != settings.get(key)]
    if differ:
        key = differ[0]
        raise ValueError(f"the encodings in {folder} were made with other data or settings ({key}: "
                         f"{found.get(key)} vs {settings.get(key)}); remove that folder or choose another work folder")


def _add(tensors: dict, grids: list, first: int, examples: list[EncodedExample]) -> None:
    """Examples ``first``, ``first + 1``, ... into a shard's tensors and grids (only their tensors stay held)."""
    for offset, example in enumerate(examples):
        tensors.update({f"{first + offset}.{name}": getattr(example, name).contiguous() for name in FIELDS})
        grids.append([list(grid) for grid in example.grids])


@torch.no_grad()
def write_store(pipe, records: list[dict], folder, settings: dict, batch: int = 4, process_index: int = 0,
                num_processes: int = 1, progress=None) -> Path:
    """Encode the records not yet on disk into ``folder`` (``settings`` from ``store_settings``). Process ``i``
    of ``n`` writes shards i, i + n, ...; a rerun skips finished shards. The MLLM and the VAE run where they are
    (put them on the GPU first). At most one shard's tensors are held at once."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "store.json").is_file():
        _check_settings(folder, settings)
    else:  # every process writes the same content: a race is harmless
        _write_atomically(folder / "store.json", lambda p: p.write_text(json.dumps(settings, indent=2)))
    size, area, shard_size = settings["size"], settings["reference_area"], settings["shard_size"]
    dtype = _DTYPES[settings["states_dtype"]]
    if process_index == 0 and not (folder / "null.safetensors").is_file():
        null = null_states(pipe).to(dtype).contiguous()
        _write_atomically(folder / "null.safetensors", lambda p: save_file({"null": null}, str(p)))
    for shard in range(process_index, -(-len(records) // shard_size), num_processes):
        path = _shard(folder, shard)
        if path.with_suffix(".json").is_file():
            continue
        begin = shard * shard_size
        chosen = records[begin : begin + shard_size]
        tensors, grids = {}, []
        for start in range(0, len(chosen), batch):
            _add(tensors, grids, begin + start, encode_chunk(pipe, chosen[start : start + batch], size, area, dtype))
            if progress is not None:
                progress(len(chosen[start : start + batch]))
        _write_atomically(path, lambda p, t=tensors: save_file(t, str(p)))
        _write_atomically(path.with_suffix(".json"), lambda p, g=grids: p.write_text(json.dumps({"grids": g})))
        del tensors
    return folder


def store_complete(folder, settings: dict) -> bool:
    """Whether ``folder`` holds every shard for ``settings`` (a store made with other settings is refused)."""
    folder = Path(folder)
    if not (folder / "store.json").is_file():
        return False
    _check_settings(folder, settings)
    shards = -(-settings["count"] // settings["shard_size"])
    return (folder / "null.safetensors").is_file() and all(
        _shard(folder, s).with_suffix(".json").is_file() for s in range(shards))


class EncodingStore:
    """An example source (see ``encode.InMemoryExamples``) over a finished store: only the index is read up
    front; ``load`` reads a batch's examples from their shards (memory-mapped) and keeps nothing."""

    def __init__(self, folder):
        from safetensors.torch import load_file

        self.folder = Path(folder)
        self.settings = json.loads((self.folder / "store.json").read_text())
        self.shard_size = self.settings["shard_size"]
        count, self._grids = self.settings["count"], []
        for shard in range(-(-count // self.shard_size)):
            index = _shard(self.folder, shard).with_suffix(".json")
            if not index.is_file():
                raise ValueError(f"the encodings in {self.folder} are incomplete (no {index.name}); rerun to finish")
            self._grids.extend(json.loads(index.read_text())["grids"])
        self.null_states = load_file(str(self.folder / "null.safetensors"))["null"]

    def __len__(self) -> int:
        return len(self._grids)

    def bucket_keys(self) -> list[tuple]:
        return [bucket_key(grids) for grids in self._grids]

    def load(self, indices: list[int]) -> list[EncodedExample]:
        from safetensors import safe_open

        found: dict[int, EncodedExample] = {}
        by_shard: dict[int, list[int]] = {}
        for i in dict.fromkeys(indices):
            by_shard.setdefault(i // self.shard_size, []).append(i)
        for shard, members in by_shard.items():
            with safe_open(str(_shard(self.folder, shard)), framework="pt", device="cpu") as f:
                for i in members:
                    fields = {name: f.get_tensor(f"{i}.{name}") for name in FIELDS}
                    found[i] = EncodedExample(grids=[tuple(g) for g in self._grids[i]], **fields)
        return [found[i] for i in indices]

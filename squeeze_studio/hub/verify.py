"""Is a model folder whole? Every problem as one line that names the file, before a 60 GB load fails halfway.

Two levels, so the list of installed models stays quick:

- ``check_files(folder)``: plain Python, no torch. The components ``model_index.json`` names are there, each
  model's weights are present (every shard its ``*.safetensors.index.json`` lists), safetensors only (a pickle
  checkpoint is refused: we never unpickle), every safetensors header readable and the file as long as the
  header says (a truncated download), tokenizer / processor / scheduler files there; in a Hugging Face cache
  snapshot also every file the Hub listed for that commit.
- ``verify_model(folder)``: that, plus every tensor's shape against the module the config builds, built on
  the meta device (no memory, well under a second even for the 20B transformer).

Problems come most useful first: missing files, then refused or broken files, then wrong shapes.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import os
from pathlib import Path

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_MISSING, _PICKLE, _BROKEN, _SHAPE, _OTHER = range(5)  # problem priorities, most useful first
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on a header


class _Problem(Exception):
    def __init__(self, priority: int, text: str):
        super().__init__(text)
        self.priority, self.text = priority, text


def verify_model(folder: str | os.PathLike) -> list[str]:
    """Every problem with the model folder, one line each, most useful first; ``[]`` when it is fine."""
    folder = Path(folder).expanduser()
    problems, components = _file_problems(folder)
    for name, library, class_name, in_file in components:
        try:
            problems.extend(_shape_problems(folder, name, library, class_name, in_file))
        except _Problem as problem:
            problems.append(problem)
    return _ordered(problems)


def check_files(folder: str | os.PathLike) -> list[str]:
    """The problems ``verify_model`` finds without building modules (no torch): quick enough for a listing."""
    return _ordered(_file_problems(Path(folder).expanduser())[0])


def check_model(folder: str | os.PathLike) -> None:
    """Raise ``ValueError`` with the first problem (and how many more) when ``folder`` is not a whole model."""
    problems = verify_model(folder)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise ValueError(problems[0] + more)


def _ordered(problems: list[_Problem]) -> list[str]:
    return [p.text for p in sorted(problems, key=lambda p: p.priority)]


# --- files -----------------------------------------------------------------------------------------------

def _file_problems(folder: Path) -> tuple[list[_Problem], list[tuple]]:
    """File-level problems, and the model components whose files are sound: (name, library, class, shapes)."""
    if not folder.is_dir():
        return [_Problem(_MISSING, f"folder not found: {folder}" if not folder.exists()
                         else f"not a folder: {folder}")], []
    try:
        index = _read_json(folder, "model_index.json")
    except _Problem as problem:
        return [problem], []
    from .source import model_kind

    problems, sound = [], []
    try:
        model_kind(folder)
    except ValueError as error:
        problems.append(_Problem(_OTHER, str(error)))
    for name, entry in index.items():
        if name.startswith("_") or not isinstance(entry, list) or len(entry) != 2 or None in entry:
            continue  # metadata, or an optional component left out
        library, class_name = str(entry[0]), str(entry[1])
        try:
            if not (folder / name).is_dir():
                raise _Problem(_MISSING, f"missing {name}/ (model_index.json names it)")
            role = _role(class_name)
            if role == "model":
                sound.append((name, library, class_name, _weights(folder, name, library)))
            else:
                _check_support_files(folder, name, role)
        except _Problem as problem:
            problems.append(problem)
    named = " ".join(p.text for p in problems)
    return problems + _cache_listing_problems(folder, already_named=named), sound


def _role(class_name: str) -> str:
    """What a component is, from its class name alone (no import): which files it must have."""
    if class_name.endswith("Scheduler"):
        return "scheduler"
    if "Tokenizer" in class_name:
        return "tokenizer"
    if class_name.endswith(("ImageProcessor", "ImageProcessorFast", "FeatureExtractor")):
        return "image_processor"
    if class_name.endswith("Processor"):
        return "processor"
    return "model"


def _check_support_files(folder: Path, name: str, role: str) -> None:
    if role == "scheduler":
        _read_json(folder, f"{name}/scheduler_config.json")
        return
    if role in ("processor", "image_processor"):
        configs = [f"{name}/{f}" for f in ("processor_config.json", "preprocessor_config.json")
                   if (folder / name / f).is_file()]
        if not configs:
            raise _Problem(_MISSING, f"missing {name}/preprocessor_config.json (or processor_config.json)")
        for config in configs:
            _read_json(folder, config)
        if role == "image_processor":
            return
    _read_json(folder, f"{name}/tokenizer_config.json")
    has = [(folder / name / f).is_file() for f in ("tokenizer.json", "tokenizer.model", "vocab.txt", "vocab.json",
                                                    "merges.txt")]
    if not (has[0] or has[1] or has[2] or has[3] and has[4]):
        raise _Problem(_MISSING, f"missing {name}/tokenizer.json (or vocab.json + merges.txt)")


def _weights(folder: Path, name: str, library: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape over one model component's safetensors files, checked: present, complete, readable."""
    _read_json(folder, f"{name}/config.json")
    directory = folder / name
    indexes = sorted(directory.glob("*.safetensors.index.json"))
    if indexes:
        label = f"{name}/{indexes[0].name}"
        weight_map = _read_json(folder, label).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise _Problem(_BROKEN, f"no weight_map in {label}")
        shards = [directory / shard for shard in sorted(set(weight_map.values()))]
        missing = [shard for shard in shards if not shard.is_file()]
        if missing:
            more = f" (and {len(missing) - 1} more shards)" if len(missing) > 1 else ""
            raise _Problem(_MISSING, f"missing {name}/{missing[0].name}{more}")
    else:
        shards = sorted(p for p in directory.glob("*.safetensors") if p.is_file())
    if not shards:
        pickles = sorted(p.name for p in directory.iterdir() if p.name.endswith(PICKLE_SUFFIXES + (".bin.index.json",)))
        if pickles:
            raise _Problem(_PICKLE, f"pickle checkpoint, not safetensors: {name}/{pickles[0]} (only safetensors load)")
        expected = "model.safetensors" if library == "transformers" else "diffusion_pytorch_model.safetensors"
        raise _Problem(_MISSING, f"missing {name}/{expected}")
    shapes: dict[str, tuple[int, ...]] = {}
    for shard in shards:
        shapes.update(safetensors_shapes(shard, f"{name}/{shard.name}"))
    return shapes


def _read_json(folder: Path, relative: str) -> dict:
    path = folder / relative
    if not path.is_file():
        raise _Problem(_MISSING, f"missing {relative}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise _Problem(_BROKEN, f"unreadable JSON: {relative}") from None
    if not isinstance(data, dict):
        raise _Problem(_BROKEN, f"unreadable JSON: {relative} (not an object)")
    return data


def safetensors_shapes(path: Path, label: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors header; ``_Problem`` naming a truncated or broken file.

    The length check is ours (a clear "N of M bytes"); ``safe_open`` then validates the rest of the header."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as file:
            prefix = file.read(8)
            length = int.from_bytes(prefix, "little") if len(prefix) == 8 else 0
            first = file.read(1)
            if len(prefix) < 8 or (first == b"{" and 8 + length > size):
                raise _Problem(_BROKEN, f"truncated file: {label} ({size:,} bytes, cut inside the header)")
            if first != b"{" or not 2 <= length <= _MAX_HEADER:
                raise _Problem(_BROKEN, f"not a safetensors file: {label}")
            raw = first + file.read(length - 1)
    except OSError as error:
        raise _Problem(_BROKEN, f"unreadable file: {label} ({error.strerror or error})") from None
    try:
        header = json.loads(raw)
    except ValueError:
        raise _Problem(_BROKEN, f"unreadable safetensors header: {label}") from None
    try:
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}
        end = max((int(v["data_offsets"][1]) for v in tensors.values()), default=0)
        shapes = {k: tuple(int(d) for d in v["shape"]) for k, v in tensors.items()}
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        raise _Problem(_BROKEN, f"unreadable safetensors header: {label}") from None
    expected = 8 + length + end
    if size < expected:
        raise _Problem(_BROKEN, f"truncated file: {label} ({size:,} of {expected:,} bytes)")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np"):
            pass
    except Exception as error:  # noqa: BLE001 - SafetensorError and whatever the reader raises: report, don't crash
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise _Problem(_BROKEN, f"unreadable safetensors file: {label} ({reason})") from None
    return shapes


def _cache_listing_problems(folder: Path, already_named: str = "") -> list[_Problem]:
    """In a Hugging Face cache snapshot: the files the Hub listed for this commit that are not there (and that
    no other problem names already)."""
    repo_dir = folder.parent.parent
    if folder.parent.name != "snapshots" or not repo_dir.name.startswith("models--"):
        return []
    from huggingface_hub import get_cached_repo_tree

    repo_id = repo_dir.name[len("models--"):].replace("--", "/")
    try:
        listing = get_cached_repo_tree(repo_id, revision=folder.name, cache_dir=repo_dir.parent)
    except Exception:  # noqa: BLE001 - no cached listing (older huggingface_hub, copied cache): nothing to compare
        return []
    missing = sorted(f.path for f in listing if not (folder / f.path).is_file() and f.path not in already_named
                     and f"{f.path.split('/')[0]}/ " not in already_named)  # a whole folder already named
    if not missing:
        return []
    more = f" (and {len(missing) - 1} more files the Hub lists)" if len(missing) > 1 else ""
    return [_Problem(_MISSING, f"missing {missing[0]}{more}")]


# --- shapes ------------------------------------------------------------------------------------------------

def _shape_problems(folder: Path, name: str, library: str, class_name: str,
                    in_file: dict[str, tuple[int, ...]]) -> list[_Problem]:
    """Compare every tensor in the files with the module ``config.json`` builds on the meta device."""
    model = _build_on_meta(folder / name, library, class_name, name)
    if model is None:
        return []  # a library we do not import from a downloaded folder: files checked, shapes not
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    rename = _key_mapper(model, expected) if library == "transformers" else (lambda key: (key, True))
    problems, covered, wrong = [], set(), []
    for key, shape in in_file.items():
        target, comparable = rename(key)
        if target not in expected:
            continue  # extra tensors do not stop a load
        covered.add(target)
        if comparable and shape != expected[target]:
            wrong.append(f"{name}: wrong shape for {key}: {shape} in file, {expected[target]} from config")
    if wrong:
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        problems.append(_Problem(_SHAPE, wrong[0] + more))
    tied = set(_tied_keys(model))
    missing = [k for k in expected if k not in covered and k not in tied]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        problems.append(_Problem(_SHAPE, f"{name}: tensor {missing[0]} missing from the weights{more}"))
    return problems


def _build_on_meta(directory: Path, library: str, class_name: str, name: str):
    """The component's module with empty (meta) weights, from its config; ``None`` for unknown libraries."""
    if library not in ("diffusers", "transformers") and not library.startswith("squeeze_studio."):
        return None
    try:
        cls = getattr(importlib.import_module(library), class_name)
    except (ImportError, AttributeError):
        raise _Problem(_OTHER, f"{name}: {library} has no {class_name} (is {library} too old?)") from None
    from accelerate import init_empty_weights

    try:
        with _quiet(), init_empty_weights():
            if library == "transformers":
                from transformers import AutoConfig

                return cls._from_config(AutoConfig.from_pretrained(directory))
            return cls.from_config(cls.load_config(directory))
    except Exception as error:  # noqa: BLE001 - a config that does not build is a problem to report, not a crash
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise _Problem(_OTHER, f"{name}: config.json does not build {class_name}: {reason}") from None


def _key_mapper(model, expected: dict):
    """Checkpoint key -> (model key, shapes comparable): transformers renames keys between checkpoint formats
    (``model.layers`` on disk, ``model.language_model.layers`` in the module), so use its own renaming."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key

        transforms = get_model_conversion_mapping(model)
        renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
        converters = [t for t in transforms if isinstance(t, WeightConverter)]
    except Exception:  # noqa: BLE001 - another transformers version: compare the keys as they are
        return lambda key: (key, True)

    def rename(key: str) -> tuple[str, bool]:
        target, converter = rename_source_key(key, renamings, converters, model.base_model_prefix, expected)
        return target, converter is None  # a converter merges or splits tensors: shapes differ by design

    return rename


def _tied_keys(model) -> list[str]:
    try:
        return list(model.get_expanded_tied_weights_keys(all_submodels=True))
    except Exception:  # noqa: BLE001 - diffusers modules and other versions have none
        return []


@contextlib.contextmanager
def _quiet():
    """Silence the libraries' config warnings while building: the report is ours."""
    import logging

    loggers = [logging.getLogger(n) for n in ("diffusers", "transformers")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)

"""Broken and hostile model folders, through ``squeeze generate`` and ``Engine``: each refused in one line before
anything loads. Pickles are never unpickled and code in a folder never runs (no trust_remote_code). A folder that
changes on disk while its model is loaded does not crash the process; the next load says what changed."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from squeeze_studio.engine import Engine

from .helpers import generate_argv, one_error_line, squeeze_command

TRANSFORMER = "transformer/diffusion_pytorch_model.safetensors"


class _Payload:
    """Unpickling this creates ``marker``: proof that a checkpoint was (or was not) unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def missing_shard(model: Path) -> str:
    folder = model / "transformer"
    tensors = load_file(folder / "diffusion_pytorch_model.safetensors")
    keys, weight_map = sorted(tensors), {}
    for i in range(2):
        name = f"diffusion_pytorch_model-{i + 1:05d}-of-00002.safetensors"
        save_file({k: tensors[k] for k in keys[i::2]}, folder / name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(keys[i::2], name))
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (folder / "diffusion_pytorch_model-00002-of-00002.safetensors").unlink()
    return "missing transformer/diffusion_pytorch_model-00002-of-00002.safetensors"


def truncated(model: Path) -> str:
    path = model / TRANSFORMER
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[:-5000])
    return f"truncated file: {TRANSFORMER} ({size - 5000:,} of {size:,} bytes)"


def wrong_shape(model: Path) -> str:
    tensors = load_file(model / TRANSFORMER)
    tensors["transformer_blocks.0.attn.to_q.weight"] = np.zeros((64, 32), np.float32)
    save_file(tensors, model / TRANSFORMER, metadata={"format": "pt"})
    return "transformer: wrong shape for transformer_blocks.0.attn.to_q.weight: (64, 32) in file, (32, 32) from config"


def unknown_pipeline_class(model: Path) -> str:
    _edit_json(model / "model_index.json", _class_name="StableDiffusionXLPipeline")
    return "model holds a StableDiffusionXLPipeline model; Squeeze Studio runs QwenImageEditPlusPipeline"


def unknown_component_class(model: Path) -> str:
    _edit_json(model / "model_index.json", transformer=["diffusers", "NoSuchTransformer2DModel"])
    return "transformer: diffusers has no NoSuchTransformer2DModel (is diffusers too old?)"


def unknown_component_library(model: Path) -> str:
    _edit_json(model / "model_index.json", transformer=["evil_models", "Transformer"])
    return ("model_index.json names transformer from the library 'evil_models'; only diffusers, transformers and "
            "squeeze_studio components are loaded")


def pickle_checkpoint(model: Path) -> str:
    (model / TRANSFORMER).unlink()
    (model / "transformer" / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps(_Payload(model / "UNPICKLED")))
    return "pickle checkpoint, not safetensors: transformer/diffusion_pytorch_model.bin (only safetensors load)"


def pickle_pt_checkpoint(model: Path) -> str:
    (model / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    (model / "vae" / "model.pt").write_bytes(pickle.dumps(_Payload(model / "UNPICKLED")))
    return "pickle checkpoint, not safetensors: vae/model.pt (only safetensors load)"


BREAKAGES = {f.__name__.replace("_", " "): f for f in (missing_shard, truncated, wrong_shape, unknown_pipeline_class,
                                                       unknown_component_class, unknown_component_library,
                                                       pickle_checkpoint, pickle_pt_checkpoint)}


@pytest.mark.parametrize("case", BREAKAGES)
def test_a_broken_model_folder_is_refused_in_one_line_by_the_cli_and_the_engine(case, model_copy, squeeze,
                                                                                 reference_files, tmp_path):
    expected = BREAKAGES[case](model_copy)
    status, err = squeeze(generate_argv(model_copy, tmp_path / "o.png", reference_files))
    assert status == 2 and expected in one_error_line(err)
    with pytest.raises(ValueError) as raised:  # EngineError, or the ValueError resolve_model raises
        Engine(model_copy, device="cpu")
    assert expected in str(raised.value) and "\n" not in str(raised.value)
    assert not (model_copy / "UNPICKLED").exists() and not (tmp_path / "o.png").exists()


@pytest.mark.slow  # the installed command or a real small filesystem: seconds of start-up each
def test_the_installed_command_refuses_a_pickle_checkpoint_without_unpickling_it(model_copy, reference_files,
                                                                                  tmp_path):
    expected = pickle_checkpoint(model_copy)
    proc = squeeze_command(generate_argv(model_copy, tmp_path / "o.png", reference_files))
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {expected}"  # one line: no traceback, no warning
    assert not (model_copy / "UNPICKLED").exists()


@pytest.mark.slow  # the installed command or a real small filesystem: seconds of start-up each
def test_the_installed_command_names_missing_vae_weights_in_one_line(model_copy, reference_files, tmp_path):
    (model_copy / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    proc = squeeze_command(generate_argv(model_copy, tmp_path / "o.png", reference_files))
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: missing vae/diffusion_pytorch_model.safetensors"


def test_a_pickle_beside_the_safetensors_is_never_read_and_code_in_the_folder_never_runs(model_copy):
    """A folder that also ships a pickle, and configs whose ``auto_map`` points at Python files in the folder
    (what ``trust_remote_code`` would run): the model loads from its safetensors and nothing in the folder runs."""
    marker = model_copy / "UNPICKLED"
    (model_copy / "transformer" / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    code = f"open({str(model_copy / 'CODE_RAN')!r}, 'w').close()\n"
    for component, config, classes in [("text_encoder", "config.json", ["AutoConfig", "AutoModelForImageTextToText"]),
                                       ("processor", "processor_config.json", ["AutoProcessor"])]:
        (model_copy / component / "remote.py").write_text(code)
        _edit_json(model_copy / component / config, auto_map={name: "remote.Thing" for name in classes})
    engine = Engine(model_copy, device="cpu")
    assert engine.pipe.transformer is not None
    assert not marker.exists() and not (model_copy / "CODE_RAN").exists()


@pytest.mark.slow
def test_a_model_changed_on_disk_while_loaded_keeps_working_and_the_next_load_says_so(model_copy, reference_files):
    """Weights truncated and deleted under a loaded model (a re-download, a copy over it). Before the fix the next
    step read the truncated memory-mapped file and the process died of SIGBUS. Run in its own process."""
    script = textwrap.dedent(f"""
        import os
        from squeeze_studio.engine import Engine
        from squeeze_studio.events import ImageResult
        from squeeze_studio.request import GenerationRequest

        model = {str(model_copy)!r}
        engine = Engine(model, device="cpu", previews=False)
        os.truncate(os.path.join(model, {TRANSFORMER!r}), 1000)
        os.truncate(os.path.join(model, "text_encoder/model.safetensors"), 1000)
        os.remove(os.path.join(model, "vae/diffusion_pytorch_model.safetensors"))
        request = GenerationRequest(instruction="a toy", references={reference_files!r}, num_inference_steps=2)
        results = [e for e in engine.generate(request) if isinstance(e, ImageResult)]
        print("generated", len(results))
        try:
            Engine(model, device="cpu")
        except ValueError as error:
            print("next load:", error)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]  # -7 (SIGBUS) before the engine copied mapped weights
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "generated 1"
    assert lines[1] == "next load: missing vae/diffusion_pytorch_model.safetensors (and 2 more problems)"


def test_a_loaded_cpu_model_maps_no_weight_file_even_from_hash_named_blobs(model_copy):
    """Laid out as in a Hugging Face cache (each weight file a link to a blob named by its hash), so the mapped
    files do not end in .safetensors."""
    import os

    from squeeze_studio.engine import _mapped_weight_ranges, detach_from_files

    blobs = model_copy.parent / "blobs"
    blobs.mkdir()
    for index, path in enumerate(sorted(model_copy.rglob("*.safetensors"))):
        blob = blobs / f"{index:040x}"
        path.rename(blob)
        path.symlink_to(blob)
    if _mapped_weight_ranges() is None:
        pytest.skip("no /proc/self/maps here")
    engine = Engine(model_copy, device="cpu")
    files = {os.path.realpath(p) for p in blobs.iterdir()}
    assert detach_from_files(engine.pipe, files) == 0  # the engine did it while loading: nothing left to copy

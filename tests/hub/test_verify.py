"""verify_model: one test per kind of broken folder. Nothing crashes; each problem is one line naming the file."""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from squeeze_studio.hub.verify import check_files, check_model, verify_model

TRANSFORMER = "transformer/diffusion_pytorch_model.safetensors"
TEXT_ENCODER = "text_encoder/model.safetensors"
VAE = "vae/diffusion_pytorch_model.safetensors"


def first_problem(folder: Path) -> str:
    """The first problem, after checking the contract: one line each, and check_model raises with it."""
    problems = verify_model(folder)
    assert problems, "a broken folder verified clean"
    assert all(p and "\n" not in p for p in problems)
    with pytest.raises(ValueError) as raised:
        check_model(folder)
    assert str(raised.value).startswith(problems[0]) and "\n" not in str(raised.value)
    return problems[0]


def rewrite(path: Path, change) -> None:
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def shard(component: Path, stem: str, parts: int = 2) -> list[str]:
    """Split a component's single safetensors file into ``parts`` shards plus an index, as big models ship."""
    tensors = load_file(component / f"{stem}.safetensors")
    keys = sorted(tensors)
    names, weight_map = [], {}
    for i in range(parts):
        name = f"{stem}-{i + 1:05d}-of-{parts:05d}.safetensors"
        chunk = {k: tensors[k] for k in keys[i::parts]}
        save_file(chunk, component / name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(chunk, name))
        names.append(name)
    (component / f"{stem}.safetensors").unlink()
    (component / f"{stem}.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return names


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


# --- whole folders -------------------------------------------------------------------------------------------

def test_whole_models_verify_clean(stock_model, tiny_model_dir):
    assert verify_model(stock_model) == []
    assert verify_model(tiny_model_dir) == []
    check_model(stock_model)


def test_the_shipped_demo_model_verifies_clean():
    from squeeze_studio.models import default_model_path

    assert verify_model(default_model_path()) == []


def test_a_whole_sharded_model_verifies_clean(stock_copy):
    shard(stock_copy / "transformer", "diffusion_pytorch_model", parts=3)
    shard(stock_copy / "text_encoder", "model")
    assert verify_model(stock_copy) == []


# --- one kind of breakage each ---------------------------------------------------------------------------------

def test_missing_shard(stock_copy):
    names = shard(stock_copy / "transformer", "diffusion_pytorch_model")
    (stock_copy / "transformer" / names[1]).unlink()
    assert first_problem(stock_copy) == "missing transformer/diffusion_pytorch_model-00002-of-00002.safetensors"
    assert check_files(stock_copy)[0] == first_problem(stock_copy)  # the quick check finds it too


def test_truncated_file(stock_copy):
    path = stock_copy / TEXT_ENCODER
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[:-1000])
    assert first_problem(stock_copy) == f"truncated file: {TEXT_ENCODER} ({size - 1000:,} of {size:,} bytes)"


def test_file_cut_inside_its_header(stock_copy):
    path = stock_copy / VAE
    path.write_bytes(path.read_bytes()[:100])
    assert first_problem(stock_copy) == f"truncated file: {VAE} (100 bytes, cut inside the header)"


def test_a_file_that_is_not_safetensors(stock_copy):
    (stock_copy / VAE).write_bytes(b"PK\x03\x04" + bytes(4000))  # a zip (torch.save) under a safetensors name
    assert first_problem(stock_copy) == f"not a safetensors file: {VAE}"


def test_pickle_checkpoint(stock_copy):
    (stock_copy / VAE).unlink()
    (stock_copy / "vae" / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps({"weight": [1.0]}))
    assert first_problem(stock_copy) == ("pickle checkpoint, not safetensors: vae/diffusion_pytorch_model.bin "
                                         "(only safetensors load)")


def test_wrong_shape_in_a_diffusers_component(stock_copy):
    rewrite(stock_copy / TRANSFORMER,
            lambda t: t.update({"transformer_blocks.0.attn.to_q.weight": np.zeros((64, 32), np.float32)}))
    assert first_problem(stock_copy) == ("transformer: wrong shape for transformer_blocks.0.attn.to_q.weight: "
                                         "(64, 32) in file, (32, 32) from config")
    assert check_files(stock_copy) == []  # shapes need the module: only the full check sees them


def test_wrong_shape_in_a_transformers_component_with_renamed_keys(stock_copy):
    # On disk "model.layers...", in the module "model.language_model.layers...": the message names the file's key.
    rewrite(stock_copy / TEXT_ENCODER,
            lambda t: t.update({"model.layers.0.self_attn.q_proj.weight": np.zeros((32, 16), np.float32)}))
    assert first_problem(stock_copy) == ("text_encoder: wrong shape for model.layers.0.self_attn.q_proj.weight: "
                                         "(32, 16) in file, (32, 32) from config")


def test_wrong_shape_in_a_squeeze_component(squeeze_copy):
    rewrite(squeeze_copy / "connector" / "diffusion_pytorch_model.safetensors",
            lambda t: t.update({"proj.weight": np.zeros((32, 48), np.float32)}))
    assert first_problem(squeeze_copy) == ("connector: wrong shape for proj.weight: "
                                           "(32, 48) in file, (32, 32) from config")


def test_config_that_no_longer_matches_the_weights(stock_copy):
    edit_json(stock_copy / "transformer" / "config.json", num_layers=3)
    assert first_problem(stock_copy).startswith("transformer: tensor transformer_blocks.2.")
    assert "missing from the weights (and " in first_problem(stock_copy)


def test_missing_tensor(stock_copy):
    rewrite(stock_copy / VAE, lambda t: t.pop("decoder.conv_in.bias"))
    assert first_problem(stock_copy) == "vae: tensor decoder.conv_in.bias missing from the weights"


def test_missing_weights(stock_copy):
    (stock_copy / VAE).unlink()
    assert first_problem(stock_copy) == f"missing {VAE}"


def test_missing_component_folder(stock_copy):
    shutil.rmtree(stock_copy / "scheduler")
    assert first_problem(stock_copy) == "missing scheduler/ (model_index.json names it)"


def test_missing_model_config(stock_copy):
    (stock_copy / "transformer" / "config.json").unlink()
    assert first_problem(stock_copy) == "missing transformer/config.json"


def test_missing_scheduler_config(stock_copy):
    (stock_copy / "scheduler" / "scheduler_config.json").unlink()
    assert first_problem(stock_copy) == "missing scheduler/scheduler_config.json"


def test_missing_tokenizer_vocabulary(stock_copy):
    (stock_copy / "tokenizer" / "tokenizer.json").unlink()
    assert first_problem(stock_copy) == "missing tokenizer/tokenizer.json (or vocab.json + merges.txt)"


def test_missing_processor_config(stock_copy):
    (stock_copy / "processor" / "processor_config.json").unlink()
    assert first_problem(stock_copy) == "missing processor/preprocessor_config.json (or processor_config.json)"


def test_unreadable_config(stock_copy):
    (stock_copy / "vae" / "config.json").write_text("{ not json")
    assert first_problem(stock_copy) == "unreadable JSON: vae/config.json"


def test_config_that_does_not_build(stock_copy):
    edit_json(stock_copy / "transformer" / "config.json", num_attention_heads="two")
    assert first_problem(stock_copy).startswith("transformer: config.json does not build QwenImageTransformer2DModel: ")


def test_no_model_index(stock_copy):
    (stock_copy / "model_index.json").unlink()
    assert first_problem(stock_copy) == "missing model_index.json"


def test_a_pipeline_squeeze_studio_does_not_run(stock_copy):
    edit_json(stock_copy / "model_index.json", _class_name="StableDiffusionPipeline")
    assert "holds a StableDiffusionPipeline model" in first_problem(stock_copy)


def test_folder_not_found(tmp_path):
    assert first_problem(tmp_path / "nowhere") == f"folder not found: {tmp_path / 'nowhere'}"


def test_missing_files_come_before_wrong_shapes(stock_copy):
    rewrite(stock_copy / TRANSFORMER,
            lambda t: t.update({"transformer_blocks.0.attn.to_q.weight": np.zeros((64, 32), np.float32)}))
    (stock_copy / "scheduler" / "scheduler_config.json").unlink()
    problems = verify_model(stock_copy)
    assert problems[0] == "missing scheduler/scheduler_config.json"
    assert problems[1].startswith("transformer: wrong shape")
    with pytest.raises(ValueError, match=r"^missing scheduler/scheduler_config\.json \(and 1 more problems\)$"):
        check_model(stock_copy)

"""Training writes an add-on (connector + transformer LoRA + a config naming its base), not a copy of the base;
base + add-on gives the merged folder's images; a base that does not match is refused in one line."""
import json

import numpy as np
import pytest
import torch

from squeeze_studio import SqueezePipeline
from squeeze_studio.cli import main
from squeeze_studio.synth.dataset import make_dataset
from squeeze_studio.testing.residency import track_residency
from squeeze_studio.train.trainer import fuse_lora

SMALL = dict(condition_image_area=64 * 64, reference_image_area=64 * 64, default_size=64)
SETTINGS = dict(num_inference_steps=3, height=64, width=64, output_type="np", tau1=0.95, tau2=0.5)


@pytest.fixture(scope="module")
def trained_addon(tmp_path_factory, tiny_stock_dir):
    data = tmp_path_factory.mktemp("synth")
    make_dataset(data, 6, seed=0, split="train", max_refs=1)
    addon = tmp_path_factory.mktemp("addons") / "toy-addon"
    # lr 1: the 100-step warm-up leaves 2 steps at 1-2 % of it, enough to move the weights visibly.
    # On a compute device simulated on the CPU (testing/residency.py): the encode pass and the training steps read
    # only weights that were put on it.
    with track_residency() as tracker:
        assert main(["train", "stage", "--model", str(tiny_stock_dir), "--data", str(data), "--stage", "identity",
                     "--steps", "2", "--out", str(addon), "--lora-rank", "4", "--batch-size", "2", "--size", "64",
                     "--lr", "1.0", "--stage-aware"]) == 0
    assert tracker.reads > 1000
    return addon


def generate(pipe, references):
    pipe.set_progress_bar_config(disable=True)
    return pipe(image=references, prompt="a toy on a beach", generator=torch.Generator().manual_seed(1),
                **SETTINGS).images


def test_training_writes_a_small_addon_that_names_its_base(trained_addon, tiny_stock_dir):
    config = json.loads((trained_addon / "squeeze_addon.json").read_text())
    assert config["base"] == str(tiny_stock_dir.resolve()) and config["family"] == "qwen_image_edit_plus"
    assert config["lora"] == "pytorch_lora_weights.safetensors" and config["training"]["steps"] == 2
    assert sorted(p.name for p in trained_addon.iterdir()) == [
        "connector", "pytorch_lora_weights.safetensors", "squeeze_addon.json"]
    assert not (trained_addon / "transformer").exists() and not (trained_addon / "text_encoder").exists()
    assert config["stage_defaults"]["tau1"] == 0.95  # trained for staged inference, until a sweep tunes it
    training = config["training"]
    assert (training["timestep_sampling"], training["stage_aware"], training["vae_reading"]) == ("inference", True,
                                                                                                 "both")


def test_base_plus_addon_equals_the_merged_folder_and_differs_from_the_bare_base(trained_addon, tiny_stock_dir,
                                                                                references, tmp_path):
    with_addon = SqueezePipeline.from_pretrained(tiny_stock_dir, addon=trained_addon, **SMALL)
    merged = SqueezePipeline.from_pretrained(tiny_stock_dir, addon=trained_addon, **SMALL)
    fuse_lora(merged.transformer)
    merged.save_pretrained(tmp_path / "merged")
    merged = SqueezePipeline.from_pretrained(tmp_path / "merged")
    bare = SqueezePipeline.from_pretrained(tiny_stock_dir, **SMALL)
    ours = generate(with_addon, references)
    np.testing.assert_allclose(ours, generate(merged, references), atol=1e-5)
    assert np.abs(ours - generate(bare, references)).max() > 1e-3
    # The add-on alone names its base, so it loads by itself too.
    alone = SqueezePipeline.from_pretrained(trained_addon, **SMALL)
    assert alone.source.folder == tiny_stock_dir.resolve() and alone.source.addon == trained_addon
    np.testing.assert_allclose(generate(alone, references), ours, atol=1e-6)


def test_loading_an_addon_reads_its_config_once(trained_addon, addon_reads):
    pipe = SqueezePipeline.from_pretrained(trained_addon, **SMALL)
    assert pipe.source.addon_config.lora and pipe.stage_defaults == pipe.source.addon_config.stage_defaults
    assert len(addon_reads) == 1  # resolve, LoRA and stage defaults share one read


def test_an_engine_on_an_addon_reads_its_config_once(trained_addon, addon_reads):
    from squeeze_studio.engine import Engine

    engine = Engine(trained_addon, device="cpu")
    assert engine.source.addon_config.lora
    assert len(addon_reads) == 1  # resolve; the memory plan and the pipeline take what it read


def test_an_addon_on_a_base_that_does_not_match_is_refused_in_one_line(trained_addon, reference_files, tmp_path,
                                                                       capsys):
    code = main(["generate", "--model", "demo", "--addon", str(trained_addon), "--ref", reference_files[0],
                 "--prompt", "x", "--out", str(tmp_path / "out.png")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: add-on toy-addon was made for ") and "demo-model does not match" in err
    assert "mllm_layers" in err


def test_an_addon_needs_a_lora_or_an_explicit_full_folder(tiny_stock_dir, tmp_path, capsys):
    code = main(["train", "stage", "--model", str(tiny_stock_dir), "--data", str(tmp_path), "--stage", "align",
                 "--steps", "1", "--out", str(tmp_path / "a"), "--lora-rank", "0"])
    assert code == 2 and "give --lora-rank N" in capsys.readouterr().err

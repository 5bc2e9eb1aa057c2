"""Resolving what the user typed into a model: folders, the Hugging Face cache (never the network), add-ons."""
import json

import pytest

from squeeze_studio.hub.defaults import BASE_DEFAULTS, PAPER_DEFAULTS
from squeeze_studio.hub.resolve import resolve_model, write_stage_defaults
from squeeze_studio.hub.source import model_shapes
from squeeze_studio.models import default_model_path

REPO = "Qwen/Qwen-Image-Edit-2509"


def test_a_stock_folder_and_a_squeeze_folder_are_told_apart(tiny_stock_dir, tiny_model_dir):
    assert resolve_model(tiny_stock_dir).kind == "stock"
    assert resolve_model(tiny_model_dir).kind == "squeeze"
    demo = resolve_model(None)
    assert demo.folder == default_model_path() and demo.is_demo and resolve_model("demo").folder == demo.folder


def test_a_repo_id_resolves_from_the_cache_that_hf_home_names(fake_hf_cache):
    source = resolve_model(REPO)
    assert source.folder == fake_hf_cache and source.kind == "stock"
    assert source.repo_id == REPO and source.revision == fake_hf_cache.name
    assert resolve_model(f"{REPO}@{fake_hf_cache.name}").folder == fake_hf_cache


def test_a_repo_id_not_in_the_cache_says_how_to_download_it(fake_hf_cache):
    with pytest.raises(ValueError, match=r"^Qwen/Qwen-Image-Edit-2511 is not in the Hugging Face cache .*"
                                         r"squeeze models download Qwen/Qwen-Image-Edit-2511$"):
        resolve_model("Qwen/Qwen-Image-Edit-2511")


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "neither a folder nor a repo id"),
    (lambda d: d.mkdir(), "no model_index.json"),
    (lambda d: (d.mkdir(), (d / "model_index.json").write_text('{"_class_name": "FluxPipeline"}')),
     "holds a FluxPipeline model"),
    (lambda d: (d.mkdir(), (d / "model_index.json").write_text("{oops")), "unreadable model_index.json"),
])
def test_what_is_not_a_model_is_one_line(tmp_path, make, message):
    folder = tmp_path / "thing"
    make(folder)
    with pytest.raises(ValueError, match=message) as error:
        resolve_model(str(folder) if folder.exists() else "./not/here")
    assert "\n" not in str(error.value)


def test_stage_defaults_come_from_the_model(tiny_stock_dir, tiny_model_dir, tmp_path):
    assert resolve_model(tiny_stock_dir).stage_defaults == BASE_DEFAULTS
    assert (BASE_DEFAULTS.tau1, BASE_DEFAULTS.tau2) == (1.0, 0.0)
    import shutil

    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    source = resolve_model(folder)
    assert source.stage_defaults == PAPER_DEFAULTS
    tuned = PAPER_DEFAULTS.__class__(0.9, 0.5, 3.0, "tuned on test data")
    write_stage_defaults(source, tuned)
    assert resolve_model(folder).stage_defaults == tuned
    with pytest.raises(ValueError, match="never written"):
        write_stage_defaults(resolve_model(tiny_stock_dir), tuned)


def test_shapes_come_from_the_configs(tiny_stock_dir):
    shapes = model_shapes(tiny_stock_dir)
    text = json.loads((tiny_stock_dir / "text_encoder" / "config.json").read_text())["text_config"]
    assert shapes["mllm_hidden_size"] == text["hidden_size"] == shapes["context_dim"]
    assert shapes["mllm_layers"] == text["num_hidden_layers"]


def addon_folder(tmp_path, base, tau1=0.9):
    """A hand-made add-on for ``base`` (config and connector config only: resolving loads no weights)."""
    folder = tmp_path / "my-addon"
    (folder / "connector").mkdir(parents=True)
    (folder / "connector" / "config.json").write_text("{}")
    defaults = {"tau1": tau1, "tau2": 0.5, "guidance_scale": 3.0, "origin": "tuned for this add-on"}
    config = {"format": 1, "family": "qwen_image_edit_plus", "base": str(base), "base_shapes": model_shapes(base),
              "stage_defaults": defaults, "lora": None}
    (folder / "squeeze_addon.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("alone", [True, False], ids=["addon-alone", "base-and-addon"])
def test_resolving_an_addon_reads_its_config_once(tiny_stock_dir, tmp_path, addon_reads, alone):
    addon = addon_folder(tmp_path, tiny_stock_dir)
    model = resolve_model(addon) if alone else resolve_model(tiny_stock_dir, addon)
    assert (model.folder, model.kind, model.addon) == (tiny_stock_dir, "stock", addon)
    assert model.addon_config.lora is None and model.addon_config.base == str(tiny_stock_dir)
    assert (model.stage_defaults.tau1, model.stage_defaults.origin) == (0.9, "tuned for this add-on")
    assert len(addon_reads) == 1

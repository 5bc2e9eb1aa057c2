"""The registry of known models, the list of installed ones and the folders the user added (all offline)."""
from __future__ import annotations

import json
import shutil

import pytest
from fake_hub import COMMIT, add_to_cache, files_of

from squeeze_studio.hub import manager
from squeeze_studio.hub.registry import KNOWN_MODELS, MEMORY_MODES, known_model

QWEN = "Qwen/Qwen-Image-Edit-2509"


def blob_bytes(folder) -> int:
    """What a folder takes in the cache: identical files share one blob (tokenizer/ and processor/ do)."""
    return sum(len(data) for data in set(files_of(folder).values()))


# --- registry --------------------------------------------------------------------------------------------------

def test_registry_holds_both_qwen_edit_plus_models_and_the_demo():
    assert {m.key for m in KNOWN_MODELS} >= {"demo", "qwen-image-edit-2509", "qwen-image-edit-2511"}
    for key in ("qwen-image-edit-2509", "qwen-image-edit-2511"):
        model = known_model(key)
        assert model.repo_id == f"Qwen/{model.title}" and model.family == "qwen_image_edit_plus"
        assert model.license == "Apache-2.0" and model.revision == "main"
        assert model.download_bytes > 50e9
        assert set(model.vram_gib) == set(MEMORY_MODES)
        # More offloading never needs more memory, and the numbers say they are estimates.
        assert model.vram_gib["full"] > model.vram_gib["model-offload"] > model.vram_gib["group-offload"]
        assert model.vram_gib["group-offload"] > model.vram_gib["sequential"]
        assert model.vram_is_estimate and "estimate" in model.notes
    assert known_model("demo").repo_id is None


def test_known_model_by_key_or_repo_id_any_case():
    assert known_model("QWEN/qwen-image-edit-2511").key == "qwen-image-edit-2511"
    assert known_model(" Qwen-Image-Edit-2509 ").repo_id == QWEN
    assert known_model("someone/else") is None and known_model("") is None


def test_repo_for_names_and_refusals():
    assert manager.repo_for("qwen-image-edit-2511") == ("Qwen/Qwen-Image-Edit-2511", "main")
    assert manager.repo_for("someone/model", "v2") == ("someone/model", "v2")
    with pytest.raises(ValueError, match="built in"):
        manager.repo_for("demo")
    with pytest.raises(ValueError, match=r"^unknown model 'qwen': give a repo id like"):
        manager.repo_for("qwen")


# --- user folders ----------------------------------------------------------------------------------------------

def test_added_folders_persist_once_each_and_can_be_forgotten(dirs, tiny_model_dir, stock_model):
    assert manager.user_folders() == []
    manager.add_user_folder(tiny_model_dir)
    manager.add_user_folder(stock_model)
    manager.add_user_folder(str(tiny_model_dir) + "/")  # the same folder again
    assert manager.user_folders() == [tiny_model_dir.resolve(), stock_model.resolve()]
    stored = json.loads((dirs["home"] / "models.json").read_text())
    assert stored == {"folders": [str(tiny_model_dir.resolve()), str(stock_model.resolve())]}
    manager.remove_user_folder(tiny_model_dir)
    assert manager.user_folders() == [stock_model.resolve()]
    assert (tiny_model_dir / "model_index.json").is_file()  # forgetting never deletes files
    with pytest.raises(ValueError, match="^not an added model folder: "):
        manager.remove_user_folder(tiny_model_dir)


def test_adding_something_that_is_not_a_model_is_refused_in_one_line(dirs, tmp_path):
    with pytest.raises(ValueError, match="^folder not found: "):
        manager.add_user_folder(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"^not a model folder \(no model_index.json\)"):
        manager.add_user_folder(tmp_path)
    assert manager.user_folders() == []


def test_an_unreadable_folder_list_is_kept_aside_not_lost(dirs, tiny_model_dir):
    dirs["home"].mkdir(parents=True)
    (dirs["home"] / "models.json").write_text("{ broken")
    assert manager.user_folders() == []
    manager.add_user_folder(tiny_model_dir)
    assert manager.user_folders() == [tiny_model_dir.resolve()]
    assert (dirs["home"] / "models.json.bak").read_text() == "{ broken"


# --- the list of installed models --------------------------------------------------------------------------------

def test_list_shows_demo_then_cache_then_folders(dirs, stock_model, tiny_model_dir, tmp_path):
    add_to_cache(dirs["cache"], QWEN, stock_model)
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "bert"}')
    add_to_cache(dirs["cache"], "google/bert-tiny", other)  # not an image-edit model: not listed
    manager.add_user_folder(tiny_model_dir)
    models = manager.list_installed()
    assert [(m.name, m.location) for m in models] == [
        (manager.DEMO_NAME, "demo"), (QWEN, "cache"), (tiny_model_dir.name, "folder")]
    demo, cached, folder = models
    assert demo.kind == "squeeze" and demo.complete and demo.repo_id is None
    assert cached.kind == "stock" and cached.complete and cached.problem == ""
    assert cached.repo_id == QWEN and cached.revision == "main" and cached.path.parent.name == "snapshots"
    assert cached.size_bytes == blob_bytes(stock_model)
    assert folder.kind == "squeeze" and folder.complete and folder.path == tiny_model_dir.resolve()
    assert folder.size_bytes == sum(p.stat().st_size for p in tiny_model_dir.rglob("*") if p.is_file())


def test_list_marks_an_incomplete_cache_entry_and_a_vanished_folder(dirs, stock_model, tmp_path):
    snapshot = add_to_cache(dirs["cache"], QWEN, stock_model)
    (snapshot / "vae" / "diffusion_pytorch_model.safetensors").resolve().unlink()  # the blob is gone
    gone = shutil.copytree(stock_model, tmp_path / "gone")
    manager.add_user_folder(gone)
    shutil.rmtree(gone)
    cached, folder = manager.list_installed()[1:]
    assert not cached.complete and cached.problem == "missing vae/diffusion_pytorch_model.safetensors"
    assert not folder.complete and folder.problem == f"folder not found: {gone}" and folder.size_bytes == 0


def test_list_shows_a_known_model_whose_download_has_not_landed_a_file(dirs):
    (dirs["cache"] / "models--Qwen--Qwen-Image-Edit-2511" / "blobs").mkdir(parents=True)
    entry = manager.list_installed()[1]
    assert entry.repo_id == "Qwen/Qwen-Image-Edit-2511" and entry.location == "cache" and not entry.complete
    assert entry.problem == "download not finished: no complete file yet"


def test_list_without_a_cache_or_demo(dirs, monkeypatch):
    monkeypatch.setattr("squeeze_studio.models.default_model_path", lambda: None)
    assert manager.list_installed() == []


def test_remove_cached_deletes_the_repo_and_says_how_much(dirs, stock_model):
    add_to_cache(dirs["cache"], QWEN, stock_model)
    add_to_cache(dirs["cache"], "Qwen/Qwen-Image-Edit-2511", stock_model)
    freed = manager.remove_cached("qwen-image-edit-2509")  # a registry key works too
    assert freed == blob_bytes(stock_model) + len(COMMIT)  # the blobs and refs/main
    assert not (dirs["cache"] / "models--Qwen--Qwen-Image-Edit-2509").exists()
    assert [m.repo_id for m in manager.list_installed()[1:]] == ["Qwen/Qwen-Image-Edit-2511"]
    with pytest.raises(ValueError, match=r"^Qwen/Qwen-Image-Edit-2509 is not in the Hugging Face cache"):
        manager.remove_cached(QWEN)

import json

from PIL import Image

from squeeze_studio.recipe import PARAMETERS_KEY, RECIPE_KEY, read_recipe, save_png
from squeeze_studio.request import GenerationRequest


def test_png_carries_both_chunks_and_restores_the_request(tmp_path):
    request = GenerationRequest(instruction="the toy upside down", references=["/a.png", "/b.png"], tau1=0.9,
                                tau2=0.7, seed=42, width=64, height=64, model="demo-model")
    path = save_png(Image.new("RGB", (64, 64), "red"), tmp_path / "out" / "result.png", request)
    with Image.open(path) as image:
        parameters = image.info[PARAMETERS_KEY]
        stored = json.loads(image.info[RECIPE_KEY])
    assert parameters.startswith("the toy upside down\nNegative prompt:")
    assert "Seed: 42" in parameters and "Size: 64x64" in parameters and "Stage tau1: 0.9" in parameters
    assert stored["version"] == 1
    assert read_recipe(path) == request
    assert [p.name for p in path.parent.iterdir()] == ["result.png"]  # no temp file left behind


def test_foreign_files_have_no_recipe(tmp_path):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    assert read_recipe(plain) is None
    assert read_recipe(broken) is None
    assert read_recipe(tmp_path / "missing.png") is None


def test_recipes_from_newer_versions_keep_what_this_one_knows():
    request = GenerationRequest.from_dict({"instruction": "x", "seed": 3, "a_future_field": 1})
    assert request.seed == 3


def test_loras_round_trip_and_untrusted_entries_are_refused(tmp_path):
    import pytest

    from squeeze_studio.recipe import inspect_recipe, outside_paths

    lora = {"path": "/loras/style.safetensors", "weight": 0.8, "name": "style", "sha256": "ab" * 32}
    request = GenerationRequest(instruction="x", loras=[lora], width=8, height=8)
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "r.png", request)
    assert read_recipe(path) == request
    with Image.open(path) as image:
        assert f'Lora hashes: "style: {"ab" * 6}"' in image.info[PARAMETERS_KEY]
    assert outside_paths(request, [tmp_path]) == ["/loras/style.safetensors"]
    assert inspect_recipe(path).outside == ["/loras/style.safetensors"]
    for bad, message in ((["x"], "holds an entry that is not a LoRA"),
                         ([{**lora, "weight": 1e9}], "holds a LoRA weight out of range"),
                         ([{**lora, "sha256": "not hex"}], "holds a LoRA hash that is not a sha256"),
                         ([lora] * 17, "lists too many LoRAs")):
        with pytest.raises(ValueError, match=f"recipe field loras {message}"):
            GenerationRequest.from_untrusted({"instruction": "x", "loras": bad})


def test_the_recipe_records_the_speed_settings_and_the_forward_passes_but_restores_only_the_settings(tmp_path):
    request = GenerationRequest(instruction="the toy", cache="taylorseer", compile=True)
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "r.png", request, {"forward_passes": 24, "full_passes": 15})
    with Image.open(path) as image:
        parameters = image.info[PARAMETERS_KEY]
        stored = json.loads(image.info[RECIPE_KEY])
    assert "Step cache: taylorseer, Compiled: yes, Forward passes: 24" in parameters
    assert stored["result"] == {"forward_passes": 24, "full_passes": 15}
    assert read_recipe(path) == request

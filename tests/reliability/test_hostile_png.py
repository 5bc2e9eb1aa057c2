"""PNG metadata is untrusted: the recipe reader that restores a dropped PNG (``recipe.inspect_recipe``; the
window's ``read_recipe`` goes through it). Sizes capped, types checked, nothing evaluated, paths outside the
user's folders handed back for confirmation, and a PNG claiming 60000 x 60000 pixels refused in one line."""
from __future__ import annotations

import json
import struct
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from squeeze_studio.recipe import RECIPE_KEY, inspect_recipe, read_recipe, save_png
from squeeze_studio.request import GenerationRequest


def png_with(path: Path, chunks: dict[str, str], size=(8, 8)) -> Path:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", size).save(path, pnginfo=info)
    return path


def recipe_png(path: Path, request: dict, **extra) -> Path:
    return png_with(path, {RECIPE_KEY: json.dumps({"version": 1, "request": request}), **extra})


def claimed_size_png(path: Path, width: int, height: int, text: bytes = b"") -> Path:
    """A valid PNG header that claims ``width`` x ``height`` pixels, with almost no data behind it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tEXt", text) +
                     chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


def refused(check, *words) -> str:
    assert check.request is None and check.problem and "\n" not in check.problem
    for word in words:
        assert word in check.problem
    return check.problem


def test_a_png_claiming_60000_by_60000_pixels_fails_in_one_line_without_a_warning(tmp_path):
    bomb = claimed_size_png(tmp_path / "bomb.png", 60000, 60000,
                            RECIPE_KEY.encode() + b"\0" + json.dumps({"request": {"instruction": "x"}}).encode())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would be an error here
        assert refused(inspect_recipe(bomb)) == ("bomb.png claims 60000 x 60000 pixels, over the "
                                                 f"{Image.MAX_IMAGE_PIXELS:,}-pixel limit; not opened")
        over_the_warning_line = claimed_size_png(tmp_path / "big.png", 10000, 10000)  # warned, not refused, by Pillow
        refused(inspect_recipe(over_the_warning_line), "10000 x 10000 pixels")
    assert read_recipe(bomb) is None


def test_a_huge_parameters_chunk_is_ignored_and_pillows_text_limit_is_one_line(tmp_path):
    fine = recipe_png(tmp_path / "fine.png", {"instruction": "the toy"}, parameters="x" * (5 * 2**20))
    assert inspect_recipe(fine).request.instruction == "the toy"  # 5 MB of A1111 text: never parsed
    huge = recipe_png(tmp_path / "huge.png", {"instruction": "the toy"}, parameters="x" * (70 * 2**20))
    refused(inspect_recipe(huge), "huge.png cannot be read: Too much memory used in text chunks")


def test_a_huge_recipe_chunk_is_capped(tmp_path):
    path = recipe_png(tmp_path / "r.png", {"instruction": "x", "padding": "y" * 300_000})
    refused(inspect_recipe(path), "recipe chunk too large")


@pytest.mark.parametrize("text, problem", [
    ("{not json", "the recipe is not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "the recipe is not valid JSON"),  # nesting deep enough to overflow the parser
    ("1" * 5000, "the recipe is not valid JSON"),  # an integer too long for Python to read
    ('"just a string"', "the recipe has no request"),
    ('{"request": []}', "the recipe is not an object"),
    ('{"request": {"seed": 1}}', "the recipe has no instruction"),
])
def test_malformed_recipes_are_refused_in_one_line(text, problem, tmp_path):
    path = png_with(tmp_path / "r.png", {RECIPE_KEY: text})
    assert refused(inspect_recipe(path)) == f"r.png: {problem}"


@pytest.mark.parametrize("field, value, problem", [
    ("instruction", 42, "instruction is not text (got int)"),
    ("instruction", "x" * 40_000, "instruction is too long (40,000 characters; at most 32,768)"),
    ("references", "/etc/passwd", "references is not a list (got str)"),
    ("references", [["/a.png"]], "references holds a list where a path is expected"),
    ("references", ["/a.png"] * 101, "references lists too many references (101; at most 100)"),
    ("references", ["/a\x00.png"], "references holds a path that is too long or contains a NUL"),
    ("tau1", "0.9", "tau1 is not a finite number"),
    ("tau1", True, "tau1 is not a finite number"),
    ("guidance_scale", float("nan"), "guidance_scale is not a finite number"),
    ("tau2", 10**400, "tau2 is not a finite number"),  # an integer no float can hold
    ("seed", 1.5, "seed is not a whole number"),
    ("seed", 2**80, "seed is out of range"),
    ("num_inference_steps", 10**9, "num_inference_steps is out of range (got 1000000000; 0 to 1000)"),
    ("width", 60000, "width is out of range"),
    ("batch_count", -1, "batch_count is out of range"),
    ("model", {"__class__": "os.system"}, "model holds a dict where a path is expected"),
    ("cache", "teacache", "cache is not a cache mode (got 'teacache'; one of none, first-block, taylorseer)"),
    ("cache", 1, "cache is not a cache mode"),
    ("compile", "yes", "compile is not true or false (got 'yes')"),
])
def test_wrong_types_and_sizes_are_refused_naming_the_field(field, value, problem, tmp_path):
    path = recipe_png(tmp_path / "r.png", {"instruction": "the toy", field: value})
    assert refused(inspect_recipe(path)).startswith(f"r.png: recipe field {problem}")


def test_nothing_in_a_recipe_is_evaluated(tmp_path):
    """Strings that would do something if evaluated or formatted stay plain text."""
    text = "__import__('os').system('touch PWNED') {0.__class__} ${HOME} `id` %(x)s"
    path = recipe_png(tmp_path / "r.png", {"instruction": text, "negative_prompt": text})
    request = inspect_recipe(path).request
    assert request.instruction == text and request.negative_prompt == text
    assert not Path("PWNED").exists()


def test_paths_outside_the_users_folders_are_handed_back_for_confirmation(tmp_path, monkeypatch):
    home, data, elsewhere = tmp_path / "home", tmp_path / "data", tmp_path / "elsewhere"
    for folder in (home, data, elsewhere, home / "photos"):
        folder.mkdir()
    (home / "photos" / "link-out").symlink_to(elsewhere)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SQUEEZE_STUDIO_HOME", str(data))
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path / "no-temp"))
    refs = {
        "in home": str(home / "photos" / "toy.png"),
        "in the data folder": str(data / "pasted" / "toy.png"),
        "beside the png": str(tmp_path / "results" / "toy.png"),
        "elsewhere": str(elsewhere / "toy.png"),
        "dot-dot out of home": str(home / "photos" / ".." / ".." / "elsewhere" / "x.png"),
        "a symlink out of home": str(home / "photos" / "link-out" / "toy.png"),
        "system file": "/etc/passwd",
        "relative": "photos/toy.png",
        "network": "//server/share/toy.png",
    }
    (tmp_path / "results").mkdir()
    path = recipe_png(tmp_path / "results" / "r.png", {"instruction": "x", "references": list(refs.values()),
                                                       "model": "/mnt/models/big", "addon": str(home / "addon")})
    check = inspect_recipe(path)
    assert check.problem == "" and check.request.references == list(refs.values())  # nothing dropped silently
    outside = [name for name, ref in refs.items() if ref in check.outside]
    assert outside == ["elsewhere", "dot-dot out of home", "a symlink out of home", "system file", "relative",
                       "network"]
    assert "/mnt/models/big" in check.outside and str(home / "addon") not in check.outside
    assert inspect_recipe(path, user_folders=[elsewhere]).outside.count(refs["elsewhere"]) == 0


def test_repo_ids_and_the_demo_are_not_paths(tmp_path):
    for model in ("", "demo", "Qwen/Qwen-Image-Edit-2509", "Qwen/Qwen-Image-Edit-2509@main"):
        path = recipe_png(tmp_path / "r.png", {"instruction": "x", "model": model})
        assert inspect_recipe(path).outside == []


def test_a_recipe_written_by_save_png_comes_back_whole(tmp_path):
    request = GenerationRequest(instruction="the toy", references=[str(tmp_path / "a.png")], tau1=0.9, tau2=0.2,
                                seed=2**40, width=64, height=48, batch_count=3, model="demo", addon="")
    path = save_png(Image.new("RGB", (64, 48)), tmp_path / "r.png", request)
    check = inspect_recipe(path)
    assert (check.request, check.problem, check.outside) == (request, "", [])


def test_files_that_are_not_pngs_have_no_recipe_and_no_problem(tmp_path):
    jpeg = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(jpeg, format="JPEG")  # a JPEG under a .png name
    (tmp_path / "empty.png").write_bytes(b"")
    for path in (jpeg, tmp_path / "empty.png", tmp_path / "missing.png", tmp_path):
        check = inspect_recipe(path)
        assert (check.request, check.problem) == (None, "")

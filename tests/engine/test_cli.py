import json
import subprocess
import sys

import pytest
from PIL import Image

from squeeze_studio.cli import main


def generate(tmp_path, *extra, refs):
    argv = ["generate", "--prompt", "a toy on a beach", "--out", str(tmp_path / "out.png"), "--steps", "3"]
    for ref in refs:
        argv += ["--ref", ref]
    return main(argv + list(extra))


def test_generate_writes_a_png_with_its_recipe(tmp_path, tiny_model_dir, reference_files, capsys):
    assert generate(tmp_path, "--model", str(tiny_model_dir), "--seed", "7", refs=reference_files) == 0
    with Image.open(tmp_path / "out.png") as image:
        image.load()
        assert image.size == (64, 64)
        assert "Seed: 7" in image.info["parameters"]
        stored = json.loads(image.info["squeeze_studio"])
    recipe = stored["request"]
    assert recipe["references"] == reference_files and recipe["num_inference_steps"] == 3
    assert len(stored["copy_paste"]["scores"]) == len(reference_files)  # the engine's score, recorded
    assert "denoising" in capsys.readouterr().err  # progress goes to stderr


def test_generate_runs_a_cached_repo_id_in_place_at_its_own_defaults(tmp_path, fake_hf_cache, reference_files,
                                                                     capsys):
    files = sorted(p.stat().st_size for p in fake_hf_cache.rglob("*"))
    assert generate(tmp_path, "--model", "Qwen/Qwen-Image-Edit-2509", "--width", "32", "--height", "32",
                    refs=reference_files[:1]) == 0
    err = capsys.readouterr().err
    assert "model defaults tau1 1, tau2 0, cfg 4: the base model's own behaviour" in err
    with Image.open(tmp_path / "out.png") as image:
        recipe = json.loads(image.info["squeeze_studio"])["request"]
    assert recipe["model"] == "Qwen/Qwen-Image-Edit-2509" and (recipe["tau1"], recipe["tau2"]) == (1.0, 0.0)
    assert sorted(p.stat().st_size for p in fake_hf_cache.rglob("*")) == files  # no copy, nothing written


@pytest.fixture(scope="module")
def not_an_image(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad") / "notes.png"
    path.write_text("this is text")
    return str(path)


BAD_INPUTS = {
    "unreadable reference": (["--ref", "/nonexistent/ref.png"], "reference not found"),
    "non-image reference": (["--ref", "{not_an_image}"], "cannot read reference image"),
    "missing model folder": (["--model", "/nonexistent/model"], "model not found: /nonexistent/model is neither"),
    "repo id not cached": (["--model", "Someone/Not-Cached"], "Someone/Not-Cached is not in the Hugging Face cache"),
    "size not a multiple": (["--width", "72"], "multiple of 16"),
    "negative steps": (["--steps", "-2"], "steps must be at least 1"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_exits_2_with_one_line(case, tmp_path, tiny_model_dir, reference_files, not_an_image, capsys):
    extra, message = BAD_INPUTS[case]
    extra = [arg.format(not_an_image=not_an_image) for arg in extra]
    refs = [] if "--ref" in extra else reference_files
    if "--model" not in extra:
        extra += ["--model", str(tiny_model_dir)]
    assert generate(tmp_path, *extra, refs=refs) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "out.png").exists()


def test_the_installed_command_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "squeeze_studio.cli", "generate", "--ref", "/nope.png",
                           "--prompt", "x", "--model", str(tmp_path), "--out", str(tmp_path / "o.png")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: not a model folder (no model_index.json): {tmp_path}"


def every_parser(parser, path=()):
    """``(argv prefix, parser)`` for ``squeeze`` and every subcommand at any depth, read from argparse itself."""
    import argparse

    yield list(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from every_parser(sub, (*path, name))


def test_help_works_for_squeeze_and_every_subcommand(capsys):
    """``--help`` for every parser the command line builds (a '%' in any help string once made the top-level help a
    TypeError). The subcommands are discovered from the parser, so a new one is covered without touching this."""
    from squeeze_studio.cli import build_parser

    parsers = list(every_parser(build_parser()))
    names = {" ".join(path) for path, _ in parsers}
    assert {"", "generate", "models", "train", "eval"} <= names and len(names) > 10
    for path, parser in parsers:
        with pytest.raises(SystemExit) as exited:
            main([*path, "--help"])
        assert exited.value.code == 0, path
        out = capsys.readouterr().out
        assert out.startswith(f"usage: {parser.prog}") and "%(" not in out, path  # defaults filled in
    top = subprocess.run([sys.executable, "-m", "squeeze_studio.cli", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert top.returncode == 0 and top.stderr == "", top.stderr
    assert "95 % intervals" in top.stdout and "compare" in top.stdout


def test_version_is_the_installed_packages():
    from importlib.metadata import version

    proc = subprocess.run([sys.executable, "-m", "squeeze_studio.cli", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, f"squeeze {version('squeeze-studio')}", "")


@pytest.mark.slow  # a whole generation, as long as the cached-repo test above
def test_lora_flag_records_each_lora_and_takes_its_settings(tmp_path, fake_hf_cache, reference_files, capsys):
    """--lora PATH[:WEIGHT], repeatable: the recipe names each file, weight and sha256; a sidecar's steps and
    guidance apply where none are given."""
    import hashlib

    from safetensors.torch import save_file

    from squeeze_studio.hub.defaults import LoraDefaults
    from squeeze_studio.hub.lora_files import write_sidecar
    from squeeze_studio.testing.loras import lora_tensors
    from squeeze_studio.testing.tiny import build_qwen_image_components

    transformer = build_qwen_image_components()["transformer"]  # the tiny stock model's architecture
    style, fast = tmp_path / "style.safetensors", tmp_path / "fast.safetensors"
    save_file(lora_tensors(transformer, "kohya", rank=4), str(style))
    save_file(lora_tensors(transformer, "lightx2v", rank=8, alpha=1.0), str(fast))
    write_sidecar(fast, LoraDefaults(steps=2, guidance_scale=1.0))
    argv = ["generate", "--prompt", "a toy", "--out", str(tmp_path / "out.png"), "--ref", reference_files[0],
            "--model", "Qwen/Qwen-Image-Edit-2509", "--width", "32", "--height", "32",
            "--lora", f"{style}:0.5", "--lora", str(fast)]
    assert main(argv) == 0
    assert "LoRA settings (2 steps): fast.squeeze.json" in capsys.readouterr().err
    with Image.open(tmp_path / "out.png") as image:
        recipe = json.loads(image.info["squeeze_studio"])["request"]
        parameters = image.info["parameters"]
    digest = hashlib.sha256(style.read_bytes()).hexdigest()
    assert recipe["loras"][0] == {"path": str(style), "weight": 0.5, "name": "style", "sha256": digest}
    assert recipe["loras"][1]["name"] == "fast" and recipe["loras"][1]["weight"] == 1.0
    assert (recipe["num_inference_steps"], recipe["guidance_scale"]) == (2, 1.0)
    assert "LoRAs: style:0.5 fast:1" in parameters and f"style: {digest[:12]}" in parameters


@pytest.mark.parametrize("given, expected", [("a.safetensors", ("a.safetensors", 1.0)),
                                             ("a.safetensors:0.7", ("a.safetensors", 0.7)),
                                             ("C:\\loras\\a.safetensors", ("C:\\loras\\a.safetensors", 1.0)),
                                             ("C:\\loras\\a.safetensors:-1", ("C:\\loras\\a.safetensors", -1.0))])
def test_lora_argument_is_a_path_and_an_optional_weight(given, expected):
    from squeeze_studio.cli import parse_lora

    assert parse_lora(given) == expected


def test_a_pickled_lora_is_refused_before_the_model_loads(tmp_path, tiny_model_dir, reference_files, capsys):
    (tmp_path / "style.ckpt").write_bytes(b"\x80\x04not really")
    assert generate(tmp_path, "--model", str(tiny_model_dir), "--lora", str(tmp_path / "style.ckpt"),
                    refs=reference_files) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: style.ckpt is a pickled checkpoint (.ckpt): LoRAs load from .safetensors only, since "
                   "unpickling can run code; convert it first"]

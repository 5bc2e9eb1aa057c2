"""Instructions: empty, 100 kB, a reserved token, control characters, right-to-left text. Each is refused in one
line before the MLLM runs, or works and comes back exactly from the PNG's recipe."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from squeeze_studio.engine import Engine
from squeeze_studio.events import ImageResult
from squeeze_studio.recipe import read_recipe, save_png
from squeeze_studio.request import MAX_INSTRUCTION_TOKENS, GenerationRequest

from .helpers import generate_argv, one_error_line, squeeze_command

HUNDRED_KB = ("the toy on a red background, seen from above, " * 2300)[:100_000]
CONTROL = "the toy\x00 on a\x1b[31m red\x07 background\x7f\x85, twice\tover\r\nand again"
RIGHT_TO_LEFT = ("\u05d4\u05e6\u05e2\u05e6\u05d5\u05e2 \u05e2\u05dc \u05d7\u05d5\u05e3 "  # Hebrew: "the toy on a beach"
                 "\u202eoverride\u202c \u0627\u0644\u0644\u0639\u0628\u0629")  # a bidi override; Arabic: "the toy"


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return Engine(tiny_model_dir, device="cpu", previews=False)


def request(references, instruction, **kwargs):
    return GenerationRequest(instruction=instruction, references=references, num_inference_steps=2, **kwargs)


@pytest.mark.parametrize("instruction", ["", "   \n\t "])
def test_an_empty_instruction_is_refused_in_one_line(instruction, squeeze, tiny_model_dir, reference_files,
                                                     tmp_path):
    status, err = squeeze(generate_argv(tiny_model_dir, tmp_path / "o.png", reference_files, instruction))
    assert status == 2
    assert one_error_line(err) == "error: the instruction is empty: say what the new image should show"
    with pytest.raises(ValueError, match="the instruction is empty"):
        GenerationRequest(instruction=instruction).validate()


def test_a_100_kb_instruction_is_refused_before_the_model_loads(squeeze, tiny_model_dir, reference_files, tmp_path,
                                                                 monkeypatch):
    """The installed command refuses it in one line; run in this process with a model load that fails the test,
    the same refusal comes back, so it is made before the model loads (once it grew past 24 GB instead)."""
    argv = generate_argv(tiny_model_dir, tmp_path / "o.png", reference_files, HUNDRED_KB)
    line = (f"error: the instruction is too long: 100,000 tokens (100,000 characters); "
            f"the limit is {MAX_INSTRUCTION_TOKENS:,} tokens")
    proc = squeeze_command(argv)
    assert proc.returncode == 2
    assert one_error_line(proc.stderr) == line

    def no_load(*_args, **_kwargs):
        raise AssertionError("the model was loaded for an instruction the command must refuse first")

    monkeypatch.setattr("squeeze_studio.engine.Engine", no_load)
    status, err = squeeze(argv)
    assert (status, one_error_line(err)) == (2, line)
    assert not (tmp_path / "o.png").exists()


REFUSAL_CHILD = """
import json, sys
from squeeze_studio.cli import main
status = main(sys.argv[1:])
print(json.dumps({"status": status, "torch": "torch" in sys.modules}))
"""


@pytest.mark.parametrize("instruction", [HUNDRED_KB, "the toy <|image_pad|> on a beach"], ids=["100 kB", "reserved"])
def test_the_refusal_comes_before_torch_is_imported(instruction, tiny_model_dir, reference_files, tmp_path):
    """The command line's own process: when it has refused the instruction, torch was never imported (counted with
    the model's tokenizer.json and the tokenizers library alone), so the answer does not wait for a torch import."""
    argv = generate_argv(tiny_model_dir, tmp_path / "o.png", reference_files, instruction)
    proc = subprocess.run([sys.executable, "-c", REFUSAL_CHILD, *map(str, argv)], capture_output=True, text=True,
                          timeout=120)
    assert json.loads(proc.stdout) == {"status": 2, "torch": False}, proc.stderr
    assert one_error_line(proc.stderr).startswith("error: the instruction ")


def test_a_100_kb_instruction_is_refused_by_the_engine_before_the_mllm_runs(engine, reference_files):
    runs = engine.mllm_runs
    for negative in (False, True):
        fields = {"negative_prompt": HUNDRED_KB} if negative else {}
        what = "negative prompt" if negative else "instruction"
        with pytest.raises(ValueError, match=f"^the {what} is too long: 100,000 tokens"):
            engine.generate(request(reference_files, "a toy" if negative else HUNDRED_KB, **fields))
    with pytest.raises(ValueError, match="is too long"):  # the library refuses it as well
        next(engine.pipe.stream(image=[], prompt=HUNDRED_KB, num_inference_steps=2))
    assert engine.mllm_runs == runs


def test_the_cap_is_counted_in_tokens(engine, reference_files):
    at_cap = "a" * MAX_INSTRUCTION_TOKENS  # the tiny tokenizer has one token per byte
    engine.check(engine.resolve(request(reference_files, at_cap)))
    with pytest.raises(ValueError, match=f"1,025 tokens .*the limit is {MAX_INSTRUCTION_TOKENS:,}"):
        engine.check(engine.resolve(request(reference_files, at_cap + "a")))


@pytest.mark.parametrize("token", ["<|image_pad|>", "<|im_end|>"])
def test_a_reserved_token_in_the_instruction_is_refused(token, engine, reference_files, squeeze, tiny_model_dir,
                                                        tmp_path):
    text = f"the toy {token} on a beach"
    expected = f"the instruction contains {token}, which the model reserves for its prompt; remove it"
    with pytest.raises(ValueError) as raised:
        engine.generate(request(reference_files, text))
    assert str(raised.value) == expected
    status, err = squeeze(generate_argv(tiny_model_dir, tmp_path / "o.png", reference_files, text))
    assert status == 2 and one_error_line(err) == f"error: {expected}"


@pytest.mark.parametrize("instruction", [CONTROL, RIGHT_TO_LEFT], ids=["control characters", "right-to-left"])
def test_control_characters_and_right_to_left_text_work_and_round_trip(instruction, engine, reference_files,
                                                                       tmp_path):
    [result] = [e for e in engine.generate(request(reference_files, instruction)) if isinstance(e, ImageResult)]
    path = save_png(result.image, tmp_path / "result.png", result.request)
    assert read_recipe(path).instruction == instruction  # exact, from the JSON chunk
    with Image.open(path) as image:
        parameters = image.info["parameters"]
        assert json.loads(image.info["squeeze_studio"])["request"]["instruction"] == instruction
    # The A1111 chunk shows every control character but tab and newline as U+FFFD (written out here, not computed
    # the way the code does it); right-to-left text and the bidi override are not control characters.
    shown = {CONTROL: "the toy\ufffd on a\ufffd[31m red\ufffd background\ufffd\ufffd, twice\tover\ufffd\nand again",
             RIGHT_TO_LEFT: RIGHT_TO_LEFT}[instruction]
    assert parameters.startswith(shown + "\nNegative prompt: ")


def test_the_command_line_takes_right_to_left_text(squeeze, tiny_model_dir, reference_files, tmp_path):
    status, err = squeeze(generate_argv(tiny_model_dir, tmp_path / "o.png", reference_files, RIGHT_TO_LEFT))
    assert status == 0, err
    assert read_recipe(tmp_path / "o.png").instruction == RIGHT_TO_LEFT

"""NaN or Inf in the latents or in the decoded image: detected at the step it appears, reported in one line, and
never saved (a NaN image comes out black). Injected into the tiny model's weights, in the engine and the CLI."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

from squeeze_studio.engine import Engine, EngineError
from squeeze_studio.events import ImageResult, StepEvent
from squeeze_studio.request import GenerationRequest

from .helpers import generate_argv, one_error_line, squeeze_command


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return Engine(tiny_model_dir, device="cpu", previews=False)


def request(reference_files, steps=3):
    return GenerationRequest(instruction="a toy on a beach", references=reference_files, num_inference_steps=steps)


def poisoned(parameter: torch.Tensor, value: float):
    """Set one weight to ``value`` for the ``with`` block, then put it back."""
    class Poison:
        def __enter__(self):
            self.saved = parameter.detach().clone()
            with torch.no_grad():
                parameter.view(-1)[0] = value

        def __exit__(self, *exc):
            with torch.no_grad():
                parameter.copy_(self.saved)
    return Poison()


@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["NaN", "Inf"])
def test_non_finite_latents_stop_the_run_at_the_first_step(value, engine, reference_files):
    def next_image() -> np.ndarray:
        [result] = [e for e in engine.generate(request(reference_files, 2)) if isinstance(e, ImageResult)]
        return np.asarray(result.image)

    before = next_image()
    seen = []
    with poisoned(engine.pipe.transformer.proj_out.bias, value), pytest.raises(EngineError) as raised:
        for event in engine.generate(request(reference_files)):
            seen.append(event)
    message = str(raised.value)
    assert message.startswith("NaN or Inf in the latents (at step 1 of 3) from ")
    assert "no image was made" in message and "\n" not in message
    assert seen == []  # not a single step (or preview) of garbage was passed on
    assert np.array_equal(next_image(), before)  # the weights restored, the next generation makes the same image


def test_a_nan_decoded_image_is_never_returned(engine, reference_files):
    """The VAE decoder's last layer poisoned: every step is fine, the decode is not. (An Inf there never reaches
    the image: the Qwen-Image VAE clamps its output to [-1, 1] itself.)"""
    events = []
    with poisoned(engine.pipe.vae.decoder.conv_out.bias, math.nan), pytest.raises(EngineError) as raised:
        for event in engine.generate(request(reference_files)):
            events.append(event)
    assert str(raised.value).startswith("NaN or Inf in the decoded image (after decoding) from ")
    assert [type(e) for e in events] == [StepEvent] * 3


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
def test_the_library_reports_it_when_asked(engine, references):
    with poisoned(engine.pipe.transformer.proj_out.bias, math.nan):
        with pytest.raises(ValueError, match=r"NaN or Inf in the latents \(at step 1 of 2\)"):
            list(engine.pipe.stream(references, "a toy", num_inference_steps=2, check_finite=True))
        *_, output = engine.pipe.stream(references, "a toy", num_inference_steps=2)  # diffusers' behaviour: no check
    assert np.asarray(output.images[0]).max() == 0  # the black image the engine never saves


@pytest.mark.slow
def test_the_installed_command_saves_no_black_png_from_nan_weights(model_copy, reference_files, tmp_path):
    path = model_copy / "transformer" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(path)
    tensors["proj_out.bias"][0] = np.nan
    save_file(tensors, path, metadata={"format": "pt"})
    proc = squeeze_command(generate_argv(model_copy, tmp_path / "o.png", reference_files))
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert line.startswith("error: NaN or Inf in the latents (at step 1 of 2) from model (float32 on cpu): no image "
                           "was made")
    assert list(tmp_path.iterdir()) == [model_copy]  # no o.png, no partial file

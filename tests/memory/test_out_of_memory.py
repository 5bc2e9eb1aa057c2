"""Running out of memory, injected while loading and at step k: one line, and the next generation works."""
import numpy as np
import pytest
import torch

from squeeze_studio.cli import main
from squeeze_studio.engine import Engine, EngineError, is_out_of_memory
from squeeze_studio.events import ImageResult
from squeeze_studio.pipeline import SqueezePipeline
from squeeze_studio.request import GenerationRequest

OOM = "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 23.55 GiB"


def request(reference_files, **changes):
    return GenerationRequest(instruction="a toy on a beach", references=reference_files, num_inference_steps=4,
                             seed=5, **changes)


def image(engine, req) -> np.ndarray:
    return np.asarray([e for e in engine.generate(req) if isinstance(e, ImageResult)][0].image)


def fail_at(step: int):
    """A ``velocity`` that runs out of memory at denoising step ``step`` (1-based), like a too-big activation."""
    original, calls = SqueezePipeline.velocity, []

    def velocity(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            raise torch.OutOfMemoryError(OOM)
        return original(self, *args, **kwargs)

    return velocity


@pytest.fixture(scope="module")
def clean(tiny_model_dir, reference_files):
    return image(Engine(tiny_model_dir, device="cpu"), request(reference_files))


def test_out_of_memory_while_loading_is_one_line_and_the_next_load_works(monkeypatch, tiny_model_dir,
                                                                        reference_files, clean):
    from squeeze_studio.memory import apply

    def too_big(pipe, mode, device, *placement):
        raise torch.OutOfMemoryError(OOM)

    monkeypatch.setattr(apply, "apply_memory_mode", too_big)
    with pytest.raises(EngineError) as caught:
        Engine(tiny_model_dir, device="cpu")
    message = str(caught.value)
    assert message.startswith(f"out of memory loading {tiny_model_dir.name} with --memory full (plan: full on cpu")
    assert "\n" not in message and message.endswith(": try a smaller size or fewer references")
    assert caught.value.lighter == ""  # no lighter mode saves anything on the CPU
    monkeypatch.undo()
    assert np.array_equal(image(Engine(tiny_model_dir, device="cpu"), request(reference_files)), clean)


def test_out_of_memory_at_step_k_is_one_line_and_the_next_generation_works(monkeypatch, tiny_model_dir,
                                                                           reference_files, clean):
    engine = Engine(tiny_model_dir, device="cpu")
    monkeypatch.setattr(SqueezePipeline, "velocity", fail_at(3))
    steps = []
    with pytest.raises(EngineError) as caught:
        for event in engine.generate(request(reference_files)):
            steps.append(event.step)
    assert steps == [1, 2]
    assert str(caught.value) == ("out of memory at step 3 of 4 with --memory full at 64x64: "
                                 "try a smaller size or fewer references")
    monkeypatch.undo()
    assert np.array_equal(image(engine, request(reference_files)), clean)


def test_out_of_memory_while_decoding_says_so(monkeypatch, tiny_model_dir, reference_files, clean):
    engine = Engine(tiny_model_dir, device="cpu", memory="model-offload")

    def decode(*args):
        raise RuntimeError("CUDA error: out of memory")  # what cuBLAS and others raise instead

    monkeypatch.setattr(engine.pipe.backbone, "decode", decode)
    with pytest.raises(EngineError, match=r"^out of memory while decoding with --memory model-offload at 64x64"):
        list(engine.generate(request(reference_files)))
    monkeypatch.undo()
    assert np.array_equal(image(engine, request(reference_files)), clean)


def test_the_real_engine_names_a_lighter_mode_and_gives_the_memory_back(monkeypatch, tiny_model_dir,
                                                                        reference_files, clean):
    """A real ``torch.OutOfMemoryError`` raised inside the tiny transformer's first block at step 2, on an engine
    that plans for a CUDA card (the tests have none: it loads on the CPU, then takes the card's name, so its memory
    plan, the lighter mode and the cache it empties are the card's). The message names the lighter mode the plan
    gives, and the memory is given back: the cached encodings dropped, the model hooks offloaded, the CUDA cache
    emptied, and no tensor of the failed run is still held (not even by the error the caller catches)."""
    import weakref
    from dataclasses import replace

    from squeeze_studio.memory import devices

    engine = Engine(tiny_model_dir, device="cpu", memory="model-offload")
    monkeypatch.setattr(engine, "device_name", "cuda")
    monkeypatch.setattr(engine, "plan", replace(engine.plan, device="cuda", free_vram=24 * 2**30))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: None)  # no card to measure
    emptied, offloaded = [], []
    monkeypatch.setattr(devices, "empty_cache", emptied.append)
    free_hooks = engine.pipe.maybe_free_model_hooks
    monkeypatch.setattr(engine.pipe, "maybe_free_model_hooks", lambda: (offloaded.append(1), free_hooks()))
    armed, held = [], []

    def out_of_memory(module, args, kwargs):
        if armed:
            held.append(weakref.ref(kwargs["hidden_states"]))  # the image tokens of the run that fails
            raise torch.OutOfMemoryError(OOM)

    block = engine.pipe.transformer.transformer_blocks[0]
    hook = block.register_forward_pre_hook(out_of_memory, with_kwargs=True)
    steps, cached = [], []
    try:
        with pytest.raises(EngineError) as caught:
            for event in engine.generate(request(reference_files)):
                steps.append(event.step)
                cached.append(len(engine.pipe._encodings))
                armed.append(1)  # step 1 is done: the next forward runs out of memory
    finally:
        hook.remove()
    assert steps == [1] and cached == [1]
    assert str(caught.value) == "out of memory at step 2 of 4 with --memory model-offload at 64x64: try --memory " \
                                "group-offload"
    assert caught.value.lighter == "group-offload"
    assert len(engine.pipe._encodings) == 0 and engine.pipe._null_encoding is None  # the encodings dropped
    assert offloaded and emptied == ["cuda"]
    assert held and held[0]() is None  # the failed run's tensors are gone, though the error is still held here
    monkeypatch.undo()
    assert np.array_equal(image(engine, request(reference_files)), clean)


def test_other_errors_are_not_taken_for_out_of_memory(monkeypatch, tiny_model_dir, reference_files):
    assert is_out_of_memory(torch.OutOfMemoryError(OOM)) and is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch")) and not is_out_of_memory(ValueError("out of memory"))
    engine = Engine(tiny_model_dir, device="cpu")

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(engine.pipe, "velocity", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        list(engine.generate(request(reference_files)))


def cli(tmp_path, model, refs):
    argv = ["generate", "--prompt", "a toy on a beach", "--out", str(tmp_path / "out.png"), "--steps", "3",
            "--model", str(model), "--device", "cpu"]
    for ref in refs:
        argv += ["--ref", ref]
    return main(argv)


def test_the_cli_reports_out_of_memory_in_one_line_and_the_next_run_works(monkeypatch, tmp_path, tiny_model_dir,
                                                                          reference_files, capsys):
    from squeeze_studio.memory import apply

    def too_big(pipe, mode, device, *placement):
        raise torch.OutOfMemoryError(OOM)

    for where, patch in (("loading", (apply, "apply_memory_mode", too_big)),
                         ("at step 2 of 3", (SqueezePipeline, "velocity", fail_at(2)))):
        monkeypatch.setattr(*patch)
        assert cli(tmp_path, tiny_model_dir, reference_files) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"error: out of memory {where}") and "try a smaller size" in last
        monkeypatch.undo()
    assert cli(tmp_path, tiny_model_dir, reference_files) == 0
    err = capsys.readouterr().err
    assert "memory plan: full on cpu at 64x64, 2 references: ~" in err and (tmp_path / "out.png").is_file()

import pytest

from squeeze_studio.engine import Engine, EngineError
from squeeze_studio.events import GenerationCancelled, ImageResult, StepEvent
from squeeze_studio.request import GenerationRequest


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return Engine(tiny_model_dir, device="cpu")


def request(reference_files, **kwargs):
    kwargs.setdefault("num_inference_steps", 4)
    return GenerationRequest(instruction="a toy on a beach", references=reference_files, **kwargs)


def test_generate_streams_every_step_then_each_image(engine, reference_files):
    events = list(engine.generate(request(reference_files, seed=5, batch_count=2)))
    steps = [e for e in events if isinstance(e, StepEvent)]
    results = [e for e in events if isinstance(e, ImageResult)]
    assert len(steps) == 8 and all(e.preview is not None for e in steps)
    assert [r.request.seed for r in results] == [5, 6]
    assert results[0].request.width == engine.native_size[0]
    assert results[0].request.model == engine.model_path
    assert results[0].image.size == engine.native_size
    for result in results:  # scored against each reference; the numbers of random weights mean nothing
        found = result.copy_paste
        assert len(found.scores) == len(reference_files) and found.score == found.scores[found.reference]
        assert found.over == (found.score >= found.threshold)


def test_cancel_takes_effect_within_one_step(engine, reference_files):
    seen = []
    events = engine.generate(request(reference_files, num_inference_steps=10),
                             should_cancel=lambda: len(seen) >= 3)
    with pytest.raises(GenerationCancelled):
        for event in events:
            seen.append(event)
    assert len(seen) == 3


def test_sweep_runs_the_mllm_once(engine, reference_files):
    engine.pipe.clear_encoding_cache()
    before = engine.mllm_runs
    variations = [{"tau1": t1, "tau2": t2} for t1, t2 in [(1.0, 0.0), (0.95, 0.85), (0.0, 0.0)]]
    results = [e for e in engine.sweep(request(reference_files), variations) if isinstance(e, ImageResult)]
    assert engine.mllm_runs == before + 1
    assert [(r.request.tau1, r.request.tau2) for r in results] == [(1.0, 0.0), (0.95, 0.85), (0.0, 0.0)]


def test_bad_input_raises_before_the_first_step(engine, reference_files, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    with pytest.raises(ValueError, match="cannot read reference"):
        engine.generate(request([str(broken)]))
    with pytest.raises(ValueError, match="multiple of 16"):
        engine.generate(request(reference_files, width=72))


def test_a_folder_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "model_index.json").write_text("{not json")
    with pytest.raises(EngineError, match="unreadable model_index.json"):
        Engine(tmp_path)
    with pytest.raises(ValueError, match="not found"):
        Engine(tmp_path / "missing")


def test_the_engine_plans_its_memory_before_loading(engine, reference_files):
    assert engine.memory_mode == "full" and engine.device_name == "cpu"  # auto, on a CPU
    plan = engine.plan
    assert (plan.mode, plan.device, plan.width, plan.references, plan.vram_bytes) == ("full", "cpu", 64, 2, 0)
    assert plan.fits and plan.suggestion == "" and plan.ram_bytes > 0
    single = engine.plan_for(request(reference_files[:1], width=32, height=48))
    assert (single.width, single.height, single.references) == (32, 48, 1)
    assert engine.measured_peak() is None  # VRAM is measured on CUDA only


def test_an_unknown_memory_mode_is_refused_in_one_line(tiny_model_dir):
    with pytest.raises(EngineError, match=r"^unknown memory mode 'turbo'; choose one of auto, full, model-offload"):
        Engine(tiny_model_dir, device="cpu", memory="turbo")


def test_a_cached_run_reports_its_forward_passes_and_compiling_is_cuda_only(engine, reference_files):
    # 1 joint step, then 3 VAE-focused ones: TaylorSeer computes the first two of a stage, then one in three
    results = [e for e in engine.generate(request(reference_files, cache="taylorseer", compile=True, tau1=1.0,
                                                  tau2=1.0)) if isinstance(e, ImageResult)]
    info = results[0].info
    assert info["forward_passes"] > info["full_passes"] > 0
    assert info["compile"] == "compiling applies to CUDA only; ran uncompiled on cpu"
    assert results[0].request.cache == "taylorseer" and results[0].request.compile is False
    assert not engine.compiled


def test_a_lora_that_does_not_fit_or_is_missing_is_one_line_before_the_first_step(engine, reference_files, tmp_path):
    import torch
    from safetensors.torch import save_file

    from squeeze_studio.testing.loras import lora_tensors

    tensors = lora_tensors(engine.pipe.transformer, "kohya", rank=4, blocks=[0])
    tensors.update({"lora_unet_transformer_blocks_59_attn_to_q.lora_down.weight": torch.zeros(4, 32),
                    "lora_unet_transformer_blocks_59_attn_to_q.lora_up.weight": torch.zeros(32, 4)})
    save_file(tensors, str(tmp_path / "big.safetensors"))
    for path, message in ((tmp_path / "big.safetensors", "big: 1 of 15 layers it names are not in this transformer"),
                          (tmp_path / "gone.safetensors", "LoRA file not found")):
        with pytest.raises(EngineError) as raised:
            engine.generate(request(reference_files, loras=[{"path": str(path), "weight": 1.0}]))
        assert message in str(raised.value) and "\n" not in str(raised.value)

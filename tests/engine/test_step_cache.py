"""Step caching (``pipeline.step_cache``): every stream has its own cache, every cache is reset at tau1 and tau2,
and the forward passes a run took are counted."""
from contextlib import contextmanager

import pytest
import torch
from diffusers.hooks import FirstBlockCacheConfig, TaylorSeerCacheConfig
from diffusers.hooks.hooks import StateManager

from squeeze_studio.stages import Stage

SETTINGS = dict(prompt="a toy on a beach", num_inference_steps=15, height=64, width=64, output_type="latent",
                tau1=0.8, tau2=0.5, guidance_scale=2.5)
# Caches that reuse whenever their hooks allow it, so that any residual left across a boundary would be reused.
GREEDY = {"first-block": FirstBlockCacheConfig(threshold=1e9),
          "taylorseer": TaylorSeerCacheConfig(cache_interval=1000, disable_cache_before_step=2, use_lite_mode=True,
                                              taylor_factors_dtype=torch.float32)}


def held_contexts(transformer) -> set[str]:
    """The streams whose state the cache hooks hold now (read from the hooks' own state managers)."""
    names = set()
    for module in transformer.modules():
        for hook in getattr(getattr(module, "_diffusers_hook", None), "hooks", {}).values():
            for value in vars(hook).values():
                if isinstance(value, StateManager):
                    names.update(value._state_cache)
    return names


@pytest.fixture
def recorded(tiny_pipeline, references, monkeypatch):
    """Run the tiny pipeline with a greedy cache; returns (calls, output): one (step, stage, stream, computed in
    full, streams the hooks held before the call) per transformer call."""
    def record(mode: str):
        tiny_pipeline.set_step_cache(mode, GREEDY[mode])
        cache, calls, stages = tiny_pipeline.step_cache, [], {}
        begin, context = cache.begin_stage, cache.context

        def begin_stage(stage):
            stages["now"] = stage
            begin(stage)

        @contextmanager
        def recording(stream, step):
            held, before = held_contexts(tiny_pipeline.transformer), cache.full_passes
            with context(stream, step):
                yield
            calls.append((step, stages["now"], stream, cache.full_passes > before, held))

        monkeypatch.setattr(cache, "begin_stage", begin_stage)
        monkeypatch.setattr(cache, "context", recording)
        try:
            output = tiny_pipeline(image=references, generator=torch.Generator().manual_seed(0), **SETTINGS)
        finally:
            tiny_pipeline.set_step_cache("none")
        return calls, output

    return record


@pytest.mark.parametrize("mode", ["first-block", "taylorseer"])
def test_no_cache_carries_anything_across_tau1_or_tau2(recorded, mode):
    calls, output = recorded(mode)
    plan = output.stage_plan
    assert all(plan.count(stage) >= 3 for stage in Stage), plan.summary()  # every boundary is crossed
    assert any(not computed for *_, computed, _ in calls)  # the greedy cache does reuse within a stage
    last_full = {}  # stream -> the stage of its last full pass
    first_of_stage = set()
    for step, stage, stream, computed, held in calls:
        if stage not in first_of_stage:  # the first call of a stage: the hooks hold nothing from before it
            first_of_stage.add(stage)
            assert held == set(), f"step {step} ({stage.value}) starts with cached state of {sorted(held)}"
        if computed:
            last_full[stream] = stage
        else:  # what was reused was computed in this stage, by this stream
            assert last_full.get(stream) is stage, f"step {step} ({stage.value}, {stream}) reused work of " \
                                                   f"{getattr(last_full.get(stream), 'value', 'no full pass')}"


def test_forward_passes_are_counted_and_the_staged_schedule_runs_fewer_than_cfg(tiny_pipeline, references):
    def run(**kwargs):
        return tiny_pipeline(image=references, generator=torch.Generator().manual_seed(0),
                             **{**SETTINGS, **kwargs})

    staged = run()
    plan = staged.stage_plan
    expected = 2 * plan.count(Stage.MLLM_ONLY) + 2 * plan.count(Stage.JOINT) + plan.count(Stage.VAE_FOCUSED)
    assert staged.forward_passes == staged.full_passes == expected
    stock = run(tau1=1.0, tau2=0.0)
    assert stock.forward_passes == 2 * SETTINGS["num_inference_steps"] > expected
    assert run(tau1=1.0, tau2=0.0, guidance_scale=1.0).forward_passes == SETTINGS["num_inference_steps"]
    cached = run(cache="taylorseer")
    tiny_pipeline.set_step_cache("none")
    assert cached.forward_passes == expected > cached.full_passes
    assert held_contexts(tiny_pipeline.transformer) == set()


def test_an_unknown_cache_mode_is_one_line(tiny_pipeline, references):
    with pytest.raises(ValueError, match="unknown cache mode 'teacache'; choose one of none, first-block"):
        tiny_pipeline(image=references, cache="teacache", **SETTINGS)


def test_the_command_line_takes_a_cache_mode_and_compile():
    from squeeze_studio.cli import UsageError, build_parser

    base = ["generate", "--ref", "a.png", "--prompt", "x", "--out", "o.png"]
    args = build_parser().parse_args([*base, "--cache", "first-block", "--compile"])
    assert (args.cache, args.compile) == ("first-block", True)
    with pytest.raises(UsageError, match="argument --cache: invalid choice: 'teacache'"):
        build_parser().parse_args([*base, "--cache", "teacache"])


def test_an_eval_setting_can_carry_a_cache_mode():
    from squeeze_studio.eval.settings import parse_taus

    setting = parse_taus("0.95,0.85,text,taylorseer")
    assert (setting.name, setting.reading, setting.cache) == ("0.95/0.85 text taylorseer", "text", "taylorseer")
    assert parse_taus("0.95,0.85,first-block").to_dict()["cache"] == "first-block"
    assert parse_taus("0.95,0.85").name == "0.95/0.85"  # reports made before caches keep their names
    with pytest.raises(ValueError, match="--taus wants 'tau1,tau2\\[,text\\]\\[,CACHE\\]'"):
        parse_taus("0.95,0.85,teacache")


def test_compiling_happens_once_on_cuda_and_the_first_images_extra_time_is_said():
    """The CUDA path without a GPU: a stand-in pipeline counts the compilations."""
    from types import SimpleNamespace

    from squeeze_studio.pipeline.step_cache import BlockCompiler

    calls = []
    compiler = BlockCompiler(SimpleNamespace(compile_blocks=lambda: calls.append(1)), "cuda:0")
    assert compiler.prepare(False) == "" and not compiler.compiled
    assert compiler.prepare(True) == "" and compiler.prepare(True) == "" and calls == [1]
    assert compiler.timing(41.0) == "compiled: this first image compiled the blocks (41.0 s); the next ones reuse them"
    assert compiler.timing(6.5) == "compiled: 6.5 s; the first image took 41.0 s (+34.5 s)"
    assert BlockCompiler(None, "cpu").prepare(True) == "compiling applies to CUDA only; ran uncompiled on cpu"

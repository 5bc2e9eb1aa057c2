import numpy as np
import pytest
import torch

from squeeze_studio.stages import Stage, StagePlan, stage_at

T = np.linspace(1.0, 0.05, 20)


def _split(plan: StagePlan) -> tuple[int, int, int]:
    return plan.count(Stage.MLLM_ONLY), plan.count(Stage.JOINT), plan.count(Stage.VAE_FOCUSED)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_thresholds_on_the_step_grid_split_by_the_papers_rule_whatever_the_rounding(dtype):
    """At 20 steps 0.95 and 0.85 are step starts; in float32 they read 0.94999999 and 0.85000002. The paper's
    t >= tau1 makes both MLLM-only steps (t = 1, 0.95) and both joint steps (0.9, 0.85) whatever the rounding."""
    grid = np.linspace(1.0, 0.05, 20).astype(dtype)
    assert float(grid[1]) != 0.95 or dtype is np.float64
    assert _split(StagePlan.from_taus(grid, 0.95, 0.85)) == (2, 2, 16)
    assert _split(StagePlan.from_taus(grid, 0.85, 0.70)) == (4, 3, 13)


def test_the_real_schedulers_20_step_grid_splits_2_2_16(tiny_pipeline):
    timesteps = tiny_pipeline.backbone.set_timesteps(tiny_pipeline.scheduler, 20, 64, 64, "cpu")
    sigmas = tiny_pipeline.scheduler.sigmas[: len(timesteps)].tolist()
    assert _split(StagePlan.from_taus(sigmas, 0.95, 0.85)) == (2, 2, 16)


def test_tau1_of_one_means_references_from_the_first_step():
    assert stage_at(1.0, 1.0, 0.0) is Stage.JOINT
    assert stage_at(1.0, 0.99, 0.0) is Stage.MLLM_ONLY  # any tau1 below 1 makes the t = 1 step MLLM-only
    assert _split(StagePlan.from_taus(T, 1.0, 1.0)) == (0, 1, 19)  # "VAE only": null instruction from step 2


def test_paper_default_splits_the_trajectory():
    plan = StagePlan.from_taus(T, 0.95, 0.85)
    assert plan.stages[0] is Stage.MLLM_ONLY
    assert all(stage is Stage.JOINT for t, stage in zip(T, plan, strict=True) if 0.85 <= t < 0.95 - 1e-9)
    assert all(stage is Stage.VAE_FOCUSED for t, stage in zip(T, plan, strict=True) if t < 0.85)


def test_extremes():
    assert StagePlan.from_taus(T, 0.0, 0.0).count(Stage.MLLM_ONLY) == len(T)  # MLLM only throughout
    assert StagePlan.from_taus(T, 1.0, 0.0).count(Stage.JOINT) == len(T)  # the joint baseline


@pytest.mark.parametrize("taus", [(0.5, 0.7), (1.2, 0.1), (0.5, -0.1)])
def test_impossible_thresholds_are_refused(taus):
    with pytest.raises(ValueError, match="tau"):
        StagePlan.from_taus(T, *taus)


class TransformerSpy:
    """Records, for every transformer call, how many image tokens and which context it saw."""

    def __init__(self, transformer):
        self.calls = []
        self.handle = transformer.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs):
        self.calls.append((kwargs["hidden_states"].shape[1], kwargs["encoder_hidden_states"].clone()))

    def remove(self):
        self.handle.remove()


@pytest.mark.parametrize("guidance", [1.0, 2.5])
def test_streams_seen_at_the_transformer_follow_the_plan(tiny_pipeline, references, guidance):
    pipe = tiny_pipeline
    steps = 10
    spy = TransformerSpy(pipe.transformer)
    try:
        out = pipe(image=references, prompt="a toy on a beach", tau1=0.8, tau2=0.4, guidance_scale=guidance,
                   num_inference_steps=steps, height=64, width=64, vae_focused_reading="null",
                   generator=torch.Generator().manual_seed(0))
    finally:
        spy.remove()
    plan = out.stage_plan
    assert {Stage.MLLM_ONLY, Stage.JOINT, Stage.VAE_FOCUSED} <= set(plan)
    (_, _, null), refs = pipe.encode(references, "a toy on a beach", " ")
    null_context = pipe.aggregate(null).embeds
    target_tokens = (64 // 16) ** 2
    ref_tokens = refs.tokens.shape[1]
    calls = iter(spy.calls)
    for stage in plan:
        passes = 1 if stage is Stage.VAE_FOCUSED or guidance <= 1 else 2
        for _ in range(passes):
            length, context = next(calls)
            expected = target_tokens + (0 if stage is Stage.MLLM_ONLY else ref_tokens)
            assert length == expected, stage
            assert torch.equal(context, null_context) == (stage is Stage.VAE_FOCUSED), stage
    assert next(calls, None) is None


def test_the_text_reading_conditions_vae_focused_steps_on_the_instruction_read_alone(tiny_pipeline, references):
    pipe = tiny_pipeline
    spy = TransformerSpy(pipe.transformer)
    try:
        out = pipe(image=references, prompt="a toy on a beach", tau1=0.8, tau2=0.4, guidance_scale=2.5,
                   num_inference_steps=10, height=64, width=64, vae_focused_reading="text",
                   generator=torch.Generator().manual_seed(0))
    finally:
        spy.remove()
    text_context = pipe.aggregate(pipe.encode_text("a toy on a beach")).embeds
    (_, _, null), refs = pipe.encode(references, "a toy on a beach", " ")
    focused = spy.calls[-out.stage_plan.count(Stage.VAE_FOCUSED):]  # one pass each: no guidance
    ref_tokens = refs.tokens.shape[1]
    for length, context in focused:
        assert length == (64 // 16) ** 2 + ref_tokens  # the reference VAE tokens stay
        assert torch.equal(context, text_context)  # the instruction's text, no image tokens
    assert not pipe.encode_text("a toy on a beach").image_mask.any()
    with pytest.raises(ValueError):
        pipe(image=references, prompt="x", vae_focused_reading="half", num_inference_steps=2, height=64, width=64)

import numpy as np
import pytest
import torch

from squeeze_studio.stages import Stage, StagePlan

T = np.linspace(1.0, 0.05, 20)


def test_paper_default_splits_the_trajectory():
    plan = StagePlan.from_taus(T, 0.95, 0.85)
    assert plan.stages[0] is Stage.MLLM_ONLY
    assert all(stage is Stage.JOINT for t, stage in zip(T, plan, strict=True) if 0.85 <= t <= 0.95)
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
                   num_inference_steps=steps, height=64, width=64, generator=torch.Generator().manual_seed(0))
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

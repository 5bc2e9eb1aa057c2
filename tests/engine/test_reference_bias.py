"""The smooth stage ramp: a soft attention weight on the reference VAE tokens."""
import numpy as np
import pytest
import torch

from squeeze_studio.backbones.reference_bias import ReferenceBiasAttnProcessor, reference_weight
from squeeze_studio.stages import Stage, StagePlan

SETTINGS = dict(num_inference_steps=6, height=64, width=64, output_type="np")


@pytest.fixture(scope="module")
def inputs(tiny_pipeline, references):
    (positive, _, _), refs = tiny_pipeline.encode(references, "a toy on a beach", " ")
    latents = tiny_pipeline.backbone.prepare_latents(1, 64, 64, torch.Generator().manual_seed(0), torch.float32, "cpu")
    return latents, torch.tensor([0.7]), tiny_pipeline.aggregate(positive), refs


def velocity(pipe, inputs, refs=True, weight=1.0):
    latents, t, conditioning, references = inputs
    with torch.no_grad():
        return pipe.backbone.predict(latents, t, conditioning, references if refs else None, 64, 64, weight)


def test_weight_one_is_the_stock_diffusers_attention(tiny_pipeline, inputs):
    stock = velocity(tiny_pipeline, inputs)
    original = tiny_pipeline.transformer.attn_processors
    tiny_pipeline.transformer.set_attn_processor(ReferenceBiasAttnProcessor(inputs[3].tokens.shape[1], 1.0))
    try:
        ours = velocity(tiny_pipeline, inputs)
    finally:
        tiny_pipeline.transformer.set_attn_processor(original)
    assert stock.abs().max() > 0
    torch.testing.assert_close(ours, stock, atol=1e-5, rtol=1e-5)


def test_weight_near_zero_hides_the_references(tiny_pipeline, inputs):
    without, full = velocity(tiny_pipeline, inputs, refs=False), velocity(tiny_pipeline, inputs)
    faint, half = velocity(tiny_pipeline, inputs, weight=0.0), velocity(tiny_pipeline, inputs, weight=0.5)
    gap = (full - without).abs().max()
    assert gap > 1e-3  # the references matter to this model, so the check can fail
    # Not exactly "left out": the text tokens' rotary positions start after the references' (measured here:
    # 16 % of the gap), whatever the weight.
    assert (faint - without).abs().max() < 0.25 * gap
    assert (faint - without).abs().max() < (half - without).abs().max() < gap


def test_the_stock_processors_come_back_even_after_an_error(tiny_pipeline):
    before = {name: type(p) for name, p in tiny_pipeline.transformer.attn_processors.items()}
    with pytest.raises(RuntimeError), reference_weight(tiny_pipeline.transformer, 8, 0.5):
        inside = tiny_pipeline.transformer.attn_processors.values()
        assert all(isinstance(p, ReferenceBiasAttnProcessor) for p in inside)
        raise RuntimeError("interrupted")
    assert {name: type(p) for name, p in tiny_pipeline.transformer.attn_processors.items()} == before


def test_the_ramp_rises_across_the_joint_band_only():
    plan = StagePlan.from_taus([1.0, 0.95, 0.9, 0.85, 0.5], 0.95, 0.85, ramp=True)
    # t >= tau1 is MLLM-only (the paper's rule): the band's weight rises from above 0 just below tau1
    assert plan.stages == (Stage.MLLM_ONLY, Stage.MLLM_ONLY, Stage.JOINT, Stage.JOINT, Stage.VAE_FOCUSED)
    assert [plan.reference_weight(i) for i in range(5)] == pytest.approx([1.0, 1.0, 0.5, 1.0, 1.0])
    hard = StagePlan.from_taus([1.0, 0.9], 0.95, 0.85)
    assert [hard.reference_weight(i) for i in range(2)] == [1.0, 1.0]


def test_the_pipeline_ramp_changes_only_what_the_band_allows(tiny_pipeline, references):
    def run(**kwargs):
        return tiny_pipeline(image=references, prompt="a toy", generator=torch.Generator().manual_seed(3),
                             **SETTINGS, **kwargs).images

    assert not np.allclose(run(tau1=1.0, tau2=0.0, reference_ramp=True), run(tau1=1.0, tau2=0.0))
    np.testing.assert_allclose(run(tau1=0.5, tau2=0.5, reference_ramp=True), run(tau1=0.5, tau2=0.5))  # no band

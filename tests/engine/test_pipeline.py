import numpy as np
import pytest
import torch

from squeeze_studio import SqueezePipeline
from squeeze_studio.pipeline import StepUpdate

SETTINGS = dict(num_inference_steps=4, height=64, width=64, output_type="np")


def run(pipe, references, seed=3, **kwargs):
    return pipe(image=references, prompt="a toy on a beach", generator=torch.Generator().manual_seed(seed),
                **{**SETTINGS, **kwargs})


@pytest.fixture
def diffusers_pipeline(tiny_pipeline, monkeypatch):
    """diffusers' QwenImageEditPlusPipeline over the very same components, shown references at 64 x 64."""
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus as edit_plus

    monkeypatch.setattr(edit_plus, "CONDITION_IMAGE_SIZE", tiny_pipeline.config.condition_image_area)
    monkeypatch.setattr(edit_plus, "VAE_IMAGE_SIZE", tiny_pipeline.config.reference_image_area)
    pipe = edit_plus.QwenImageEditPlusPipeline(
        scheduler=tiny_pipeline.scheduler, vae=tiny_pipeline.vae, text_encoder=tiny_pipeline.text_encoder,
        tokenizer=tiny_pipeline.processor.tokenizer, processor=tiny_pipeline.processor,
        transformer=tiny_pipeline.transformer,
    )
    pipe.prompt_template_encode_start_idx = tiny_pipeline.encoder.drop_index  # 64 fits only the real tokenizer
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("guidance", [1.0, 2.5])
def test_parity_with_diffusers_qwen_image_edit_plus(tiny_pipeline, diffusers_pipeline, references, guidance):
    """Identity-initialised DLA + "MLLM + VAE at every step" is exactly the base model."""
    expected = diffusers_pipeline(image=references, prompt="a toy on a beach", true_cfg_scale=guidance,
                                  negative_prompt=" " if guidance > 1 else None,
                                  generator=torch.Generator().manual_seed(3), **SETTINGS).images
    ours = run(tiny_pipeline, references, tau1=1.0, tau2=0.0, guidance_scale=guidance).images
    assert expected.std() > 0
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_stages_change_the_result(tiny_pipeline, references):
    joint = run(tiny_pipeline, references, tau1=1.0, tau2=0.0).images
    staged = run(tiny_pipeline, references, tau1=0.95, tau2=0.85).images
    assert not np.allclose(joint, staged)


def test_encoding_cache_skips_the_mllm_for_new_seeds_and_taus(tiny_pipeline, references):
    tiny_pipeline.clear_encoding_cache()
    before = tiny_pipeline.encoder.runs
    run(tiny_pipeline, references, seed=1)
    run(tiny_pipeline, references, seed=2, tau1=0.5, tau2=0.2, guidance_scale=4.0)
    assert tiny_pipeline.encoder.runs == before + 1
    tiny_pipeline(image=references, prompt="another instruction", **SETTINGS)
    tiny_pipeline(image=references[:1], prompt="another instruction", **SETTINGS)
    assert tiny_pipeline.encoder.runs == before + 3


def test_save_and_load_round_trip(tiny_pipeline, references, tmp_path):
    tiny_pipeline.save_pretrained(tmp_path)
    loaded = SqueezePipeline.from_pretrained(tmp_path, local_files_only=True)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.default_size == tiny_pipeline.config.default_size
    assert loaded.encoder.drop_index == tiny_pipeline.encoder.drop_index
    np.testing.assert_allclose(run(loaded, references).images, run(tiny_pipeline, references).images, atol=1e-5)


def test_previews_and_step_callbacks_arrive_every_step(tiny_pipeline, references):
    previews, callbacks = [], []

    def on_step_end(pipe, i, t, tensors):
        callbacks.append(tensors["latents"].shape)
        return {}

    run(tiny_pipeline, references, num_inference_steps=5, callback_on_step_end=on_step_end,
        preview_callback=lambda update: previews.append(update.preview()))
    assert len(previews) == len(callbacks) == 5
    assert previews[0].size == (64 // 8, 64 // 8) and previews[0].mode == "RGB"


def test_stream_yields_steps_then_the_output(tiny_pipeline, references):
    items = list(tiny_pipeline.stream(image=references, prompt="x", num_inference_steps=3, height=32, width=48))
    assert [item.step for item in items[:-1]] == [1, 2, 3]
    assert all(isinstance(item, StepUpdate) for item in items[:-1])
    assert items[-1].images[0].size == (48, 32)


@pytest.mark.parametrize("kwargs, message", [
    ({"height": 50}, "multiple of 16"),
    ({"width": 0}, "multiple of 16"),
    ({"num_inference_steps": -1}, "at least 1"),
    ({"tau1": 0.2, "tau2": 0.5}, "tau"),
    ({"guidance_scale": -1.0}, "guidance"),
])
def test_bad_input_is_refused_with_one_line(tiny_pipeline, references, kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        run(tiny_pipeline, references, **kwargs)
    assert "\n" not in str(error.value)


def test_a_2d_autoencoder_kl_can_stand_in_for_the_qwen_vae(references, tmp_path):
    from squeeze_studio.testing.tiny import build_autoencoder_kl, build_tiny_pipeline

    pipe = build_tiny_pipeline(vae=build_autoencoder_kl(blocks=3))  # scale 4: 64 px -> 16 x 16 latents
    assert pipe.backbone.size_multiple == 8
    _, refs = pipe.encode(references[:1], "x", " ")
    assert refs.tokens.shape[1] == (64 // 4 // 2) ** 2
    previews = []
    out = pipe(image=references, prompt="x", num_inference_steps=3, height=40, width=64,
               preview_callback=lambda update: previews.append(update.preview()))
    assert out.images[0].size == (64, 40) and previews[-1].size == (16, 10)
    pipe.save_pretrained(tmp_path)
    loaded = SqueezePipeline.from_pretrained(tmp_path, local_files_only=True)
    assert type(loaded.vae).__name__ == "AutoencoderKL" and loaded.backbone.size_multiple == 8

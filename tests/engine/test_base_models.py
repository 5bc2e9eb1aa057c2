"""A stock Qwen-Image-Edit-Plus base, by folder or cached repo id: used as it is, equal to the stock pipeline at
tau1 = 1 / tau2 = 0, with previews fitted once and cached outside the model."""
import numpy as np
import pytest
import torch

from squeeze_studio import SqueezePipeline
from squeeze_studio.hub.defaults import BASE_DEFAULTS
from squeeze_studio.stages import Stage

REPO = "Qwen/Qwen-Image-Edit-2509"
SMALL = dict(condition_image_area=64 * 64, reference_image_area=64 * 64, default_size=64)
SETTINGS = dict(num_inference_steps=4, height=64, width=64, output_type="np")


def tree(folder):
    return sorted((p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*"))


@pytest.fixture
def stock_pipeline(fake_hf_cache, monkeypatch):
    """diffusers' own QwenImageEditPlusPipeline on the cached snapshot, shown references at 64 x 64."""
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus as edit_plus

    monkeypatch.setattr(edit_plus, "CONDITION_IMAGE_SIZE", SMALL["condition_image_area"])
    monkeypatch.setattr(edit_plus, "VAE_IMAGE_SIZE", SMALL["reference_image_area"])
    pipe = edit_plus.QwenImageEditPlusPipeline.from_pretrained(fake_hf_cache, local_files_only=True)
    prefix = pipe.prompt_template_encode.split("{}")[0]
    pipe.prompt_template_encode_start_idx = len(pipe.tokenizer(prefix).input_ids)  # 64 fits the real tokenizer only
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("guidance", [1.0, 4.0])
def test_a_cached_repo_id_equals_the_stock_pipeline_at_its_own_defaults(fake_hf_cache, stock_pipeline, references,
                                                                       guidance):
    before = tree(fake_hf_cache)
    ours = SqueezePipeline.from_pretrained(REPO, **SMALL)
    ours.set_progress_bar_config(disable=True)
    assert ours.stage_defaults == BASE_DEFAULTS and ours.source.repo_id == REPO
    expected = stock_pipeline(image=references, prompt="a toy on a beach", true_cfg_scale=guidance,
                              negative_prompt=" " if guidance > 1 else None,
                              generator=torch.Generator().manual_seed(3), **SETTINGS).images
    # No tau given: the base's own behaviour (tau1 = 1, tau2 = 0), both streams at every step.
    result = ours(image=references, prompt="a toy on a beach", guidance_scale=guidance,
                  generator=torch.Generator().manual_seed(3), **SETTINGS)
    assert expected.std() > 0
    np.testing.assert_allclose(result.images, expected, atol=1e-5)
    assert set(result.stage_plan) == {Stage.JOINT}
    assert tree(fake_hf_cache) == before  # nothing written into the Hugging Face cache


def test_a_base_fits_its_preview_map_once_and_caches_it_beside_the_user_data(fake_hf_cache, tmp_path, references,
                                                                          monkeypatch):
    import squeeze_studio.backbones.qwen_image as qwen_image

    fits = []
    real_fit = qwen_image.fit_preview_projection
    monkeypatch.setattr(qwen_image, "fit_preview_projection", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    previews = []
    for _ in range(2):
        pipe = SqueezePipeline.from_pretrained(REPO, **SMALL)
        pipe.set_progress_bar_config(disable=True)
        pipe(image=references, prompt="a toy", preview_callback=lambda u: previews.append(u.preview()), **SETTINGS)
    assert len(fits) == 1 and len(previews) == 8 and previews[0].size == (8, 8)
    cached = list((tmp_path / "squeeze-home" / "preview-maps").iterdir())
    assert [p.name for p in cached] == [f"Qwen--Qwen-Image-Edit-2509@{fake_hf_cache.name}.safetensors"]


def test_a_stock_folder_loads_by_path_too(tiny_stock_dir, references):
    pipe = SqueezePipeline.from_pretrained(tiny_stock_dir, **SMALL)
    assert pipe.source.kind == "stock" and pipe.source.repo_id is None
    assert pipe.connector.config.num_layers == pipe.text_encoder.config.text_config.num_hidden_layers + 1

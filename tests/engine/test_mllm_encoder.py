import torch

from squeeze_studio.mllm import JointMLLMEncoder
from squeeze_studio.mllm.encoder import IMAGE_SLOT


def test_drop_index_is_measured_from_the_tokenizer(tiny_pipeline):
    encoder = tiny_pipeline.encoder
    prefix = encoder.prompt_template.split("{}")[0]
    assert encoder.drop_index == len(encoder.processor.tokenizer(prefix).input_ids)
    assert encoder.drop_index != 64  # the real tokenizer's value would cut into this prompt


def test_prompt_interleaves_one_slot_per_reference(tiny_pipeline):
    prompt = tiny_pipeline.encoder.build_prompt("a toy on a beach", 3)
    slots = "".join(IMAGE_SLOT.format(i) for i in (1, 2, 3))
    assert slots + "a toy on a beach" in prompt


def test_encoding_returns_all_layers_and_token_type_masks(tiny_pipeline, references):
    encoder = tiny_pipeline.encoder
    shown = [tiny_pipeline.backbone.condition_image(img, 64 * 64) for img in references]
    with_images, text_only = encoder.encode(["a toy", "a much longer instruction here"], [shown, []])
    layers = encoder.model.config.text_config.num_hidden_layers + 1
    assert with_images.hidden_states.shape[:2] == (1, layers)
    assert with_images.hidden_states.shape[-1] == encoder.model.config.text_config.hidden_size
    assert not (with_images.text_mask & with_images.image_mask).any()
    assert (with_images.text_mask | with_images.image_mask).all()
    grids = encoder.processor.image_processor(shown, return_tensors="pt")["image_grid_thw"]
    assert with_images.image_mask.sum() == grids.prod(-1).sum() // 4  # 2 x 2 patches merge into one token
    assert text_only.image_mask.sum() == 0
    # the suffix after the user's text is "<|im_end|>\n<|im_start|>assistant\n" in both
    assert torch.equal(with_images.attention_mask.sum(), torch.tensor(with_images.hidden_states.shape[2]))


def test_last_layer_matches_diffusers_prompt_embeds(tiny_pipeline, references):
    """Our all-layer encoding's last layer is what QwenImageEditPlusPipeline feeds its transformer."""
    from diffusers import QwenImageEditPlusPipeline

    encoder: JointMLLMEncoder = tiny_pipeline.encoder
    reference = QwenImageEditPlusPipeline(
        scheduler=tiny_pipeline.scheduler, vae=tiny_pipeline.vae, text_encoder=tiny_pipeline.text_encoder,
        tokenizer=tiny_pipeline.processor.tokenizer, processor=tiny_pipeline.processor,
        transformer=tiny_pipeline.transformer,
    )
    reference.prompt_template_encode_start_idx = encoder.drop_index
    shown = [tiny_pipeline.backbone.condition_image(img, 64 * 64) for img in references]
    expected, _ = reference._get_qwen_prompt_embeds("a toy on a beach", shown, device="cpu")
    (ours,) = encoder.encode(["a toy on a beach"], [shown])
    torch.testing.assert_close(ours.last_layer, expected)


def test_loads_a_vision_language_model_and_processor_from_a_local_folder(tiny_pipeline, references, tmp_path):
    tiny_pipeline.text_encoder.save_pretrained(tmp_path)
    tiny_pipeline.processor.save_pretrained(tmp_path)
    loaded = JointMLLMEncoder.from_pretrained(tmp_path, local_files_only=True)
    assert loaded.drop_index == tiny_pipeline.encoder.drop_index
    (ours,) = loaded.encode(["a toy"], [[references[0]]])
    (expected,) = tiny_pipeline.encoder.encode(["a toy"], [[references[0]]])
    torch.testing.assert_close(ours.hidden_states, expected.hidden_states)

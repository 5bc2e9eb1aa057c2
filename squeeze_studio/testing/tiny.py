"""Tiny random-weight versions of the real architectures, built offline in well under a second.

The tokenizer is byte-level with Qwen's special tokens and chat template, so the whole text path
(template, drop index, image slots) is the real one; only the sizes are small. Reference images are
shown at 64 x 64, so nothing is resized to the real model's 1024 x 1024.
"""
from __future__ import annotations

from pathlib import Path

import torch

QWEN_SPECIAL_TOKENS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                       "<|image_pad|>", "<|video_pad|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TINY_SIZE = 64


def build_tokenizer(corpus: list[str] | None = None, vocab_size: int = 512):
    """Byte-level Qwen2 tokenizer with Qwen's special tokens.

    Without ``corpus``: one token per byte, no merges. With one, byte-level BPE merges are learned from
    it (a domain vocabulary: short sequences for the demo model's instructions)."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import Qwen2Tokenizer

    vocab = {symbol: i for i, symbol in enumerate(sorted(ByteLevel.alphabet()))}
    merges = []
    if corpus:
        vocab, merges = _learn_bpe(corpus, vocab_size)
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, model_max_length=4096, unk_token=None,
                               pad_token="<|endoftext|>", eos_token="<|im_end|>")
    tokenizer.add_special_tokens({"additional_special_tokens": QWEN_SPECIAL_TOKENS})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _learn_bpe(corpus: list[str], vocab_size: int):
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer)
    state = json.loads(tokenizer.model.__getstate__())
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["merges"]]
    return dict(state["vocab"]), merges


def build_processor(tokenizer, pixels: int = 56 * 56):
    """Qwen2-VL processor showing every reference as ``pixels`` pixels (4 merged vision tokens at 56 x 56)."""
    from transformers import Qwen2VLProcessor
    from transformers.models.qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    images = Qwen2VLImageProcessor(min_pixels=pixels, max_pixels=pixels, patch_size=14, temporal_patch_size=2,
                                   merge_size=2)
    return Qwen2VLProcessor(image_processor=images, tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(),
                            chat_template=CHAT_TEMPLATE)


def build_mllm(tokenizer, hidden: int = 32, layers: int = 2, heads: int = 2, seed: int = 0):
    """Tiny Qwen2.5-VL whose special-token ids match ``tokenizer``."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    token_id = tokenizer.convert_tokens_to_ids
    quarter = hidden // heads // 2
    mrope = [quarter // 4, quarter // 4, quarter - 2 * (quarter // 4)]  # must sum to head_dim / 2
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
            num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "mrope_section": mrope, "rope_theta": 1e6},
            bos_token_id=None, eos_token_id=token_id("<|im_end|>"), pad_token_id=token_id("<|endoftext|>"),
        ),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=hidden,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, fullatt_block_indexes=[1]),
        image_token_id=token_id("<|image_pad|>"), video_token_id=token_id("<|video_pad|>"),
        vision_start_token_id=token_id("<|vision_start|>"), vision_end_token_id=token_id("<|vision_end|>"),
    )
    torch.manual_seed(seed)
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def build_qwen_image_components(hidden: int = 32, z_dim: int = 4, layers: int = 2, seed: int = 0) -> dict:
    """Tiny QwenImageTransformer2DModel, AutoencoderKLQwenImage and scheduler (diffusers' real classes)."""
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel

    head_dim, heads = 16, 2
    quarter = head_dim // 4
    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=z_dim * 4, out_channels=z_dim, num_layers=layers, attention_head_dim=head_dim,
        num_attention_heads=heads, joint_attention_dim=hidden,
        axes_dims_rope=(head_dim - 2 * quarter, quarter, quarter),  # must sum to attention_head_dim
    )
    torch.manual_seed(seed)
    vae = AutoencoderKLQwenImage(
        base_dim=8, z_dim=z_dim, dim_mult=[1, 2, 2, 2], num_res_blocks=1,
        temperal_downsample=[False, True, True],  # 2 ** 3 = 8x, like the real VAE
        latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim,
    )
    return {"transformer": transformer, "vae": vae, "scheduler": FlowMatchEulerDiscreteScheduler()}


def build_autoencoder_kl(latent_channels: int = 4, blocks: int = 3, seed: int = 0):
    """A tiny 2-D ``AutoencoderKL`` (scale ``2 ** (blocks - 1)``), the stand-in VAE for CPU-trained models."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * blocks,
                         up_block_types=("UpDecoderBlock2D",) * blocks, block_out_channels=(16,) * blocks,
                         layers_per_block=1, latent_channels=latent_channels, norm_num_groups=8)


def build_tiny_pipeline(mode: str = "dla", hidden: int = 32, seed: int = 0, vae=None):
    """A complete tiny SqueezePipeline with an identity-initialised connector (``vae`` overrides the
    Qwen-Image VAE, e.g. with ``build_autoencoder_kl()``)."""
    from ..dla import LayerConnector
    from ..pipeline import SqueezePipeline

    tokenizer = build_tokenizer()
    mllm = build_mllm(tokenizer, hidden=hidden, seed=seed)
    connector = LayerConnector(mode=mode, num_layers=mllm.config.text_config.num_hidden_layers + 1,
                               hidden_size=hidden, num_heads=2)
    components = build_qwen_image_components(hidden=hidden, seed=seed)
    if vae is not None:
        components["vae"] = vae
    pipe = SqueezePipeline(text_encoder=mllm, processor=build_processor(tokenizer), connector=connector,
                           **components,
                           condition_image_area=TINY_SIZE * TINY_SIZE, reference_image_area=TINY_SIZE * TINY_SIZE,
                           default_size=TINY_SIZE)
    from ..backbones.qwen_image import fit_preview_projection

    pipe.register_modules(preview_projection=fit_preview_projection(pipe.backbone, grid=4))
    pipe.backbone.preview_projection = pipe.preview_projection
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_tiny_model(folder: str | Path, mode: str = "dla") -> Path:
    """Write a tiny random-weight model folder (``SqueezePipeline.save_pretrained``) and return its path."""
    folder = Path(folder)
    build_tiny_pipeline(mode=mode).save_pretrained(folder)
    return folder


def build_tiny_stock_model(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random-weight *stock* diffusers ``QwenImageEditPlusPipeline`` folder, laid out like a real
    ``Qwen/Qwen-Image-Edit-2509`` snapshot (tokenizer and processor folders, the real scheduler config with
    dynamic shifting), and return its path: the stand-in for a downloaded base model."""
    from diffusers import QwenImageEditPlusPipeline

    folder = Path(folder)
    tokenizer = build_tokenizer()
    components = build_qwen_image_components(seed=seed)
    components["scheduler"] = qwen_edit_scheduler()
    pipe = QwenImageEditPlusPipeline(text_encoder=build_mllm(tokenizer, seed=seed), tokenizer=tokenizer,
                                     processor=build_processor(tokenizer), **components)
    pipe.save_pretrained(folder)
    return folder


def qwen_edit_scheduler():
    """The flow-matching scheduler as Qwen-Image-Edit-2509 configures it (dynamic shifting, exponential)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from ..hub.reference_configs import QWEN_IMAGE_EDIT_PLUS

    return FlowMatchEulerDiscreteScheduler.from_pretrained(QWEN_IMAGE_EDIT_PLUS, subfolder="scheduler")

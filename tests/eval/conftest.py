"""Eval fixtures: a tiny random-weight model folder, a 4-example SynthSubjects test set, tiny encoders."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def build_tiny_dino(folder: Path) -> Path:
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             image_size=32, patch_size=8)).save_pretrained(folder)
    BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def build_tiny_clip(folder: Path) -> Path:
    """CLIPModel + CLIPProcessor whose tokenizer is byte-level BPE without merges (one token per byte)."""
    import torch
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    alphabet = sorted(ByteLevel.alphabet())
    vocab = {s: i for i, s in enumerate(alphabet)}
    vocab.update({s + "</w>": len(alphabet) + i for i, s in enumerate(alphabet)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=vocab["<|startoftext|>"],
                         eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"]),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def eval_model(tmp_path_factory):
    from squeeze_studio.testing.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("eval-model") / "tiny")


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    from squeeze_studio.synth.dataset import make_dataset

    folder = tmp_path_factory.mktemp("eval-data")
    make_dataset(folder, count=4, seed=0, split="test")
    return folder


@pytest.fixture(scope="session")
def tiny_dino(tmp_path_factory):
    return build_tiny_dino(tmp_path_factory.mktemp("dino"))


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine extra threads only fight."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

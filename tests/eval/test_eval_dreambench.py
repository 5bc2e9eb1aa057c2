"""DreamBench metrics with tiny random encoders: shapes, ranges and wiring only (random weights)."""
import numpy as np
import pytest
from PIL import Image

from squeeze_studio.eval.dreambench import DreamBenchScorer, aggregate


def _image(seed: int, size=(64, 64)) -> Image.Image:
    return Image.fromarray(np.random.RandomState(seed).randint(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def scorer(tiny_dino, tiny_clip):
    return DreamBenchScorer(dino=tiny_dino, clip=tiny_clip)


def test_scores_every_output_in_range(scorer):
    refs = scorer.references([_image(1), _image(2, (48, 80))])
    assert refs.dino.shape == (2, 32) and refs.clip.shape == (2, 16)
    long_instruction = "the toy on a beach at sunset, seen from above " * 20  # longer than CLIP's 77 tokens
    scores = scorer.score([_image(3), _image(4), _image(1)], refs, long_instruction)
    assert len(scores) == 3
    for s in scores:
        assert set(s) == {"dino", "clip_i", "clip_t"}
        assert all(-1.0 - 1e-5 <= v <= 1.0 + 1e-5 for v in s.values())
    # an output identical to a reference is at least as close to it as to itself: cosine 1 with that one
    same = scorer.score([_image(1)], scorer.references([_image(1)]), "x")[0]
    assert same["dino"] == pytest.approx(1.0, abs=1e-5) and same["clip_i"] == pytest.approx(1.0, abs=1e-5)


def test_aggregate_means_present_metrics():
    result = aggregate([{"dino": 0.5, "clip_t": 0.2}, {"dino": 0.7, "clip_t": 0.4}])
    assert result == {"n": 2, "dino": pytest.approx(0.6), "clip_t": pytest.approx(0.3)}


def test_one_encoder_is_enough(tiny_dino):
    scorer = DreamBenchScorer(dino=tiny_dino)
    assert scorer.metrics == ("dino",)
    [s] = scorer.score([_image(5)], scorer.references([_image(6)]), "x")
    assert set(s) == {"dino"}


def test_bad_encoder_folders_are_one_line_errors(tmp_path, tiny_dino):
    with pytest.raises(ValueError, match="DINO model folder not found"):
        DreamBenchScorer(dino=tmp_path / "nope")
    with pytest.raises(ValueError, match="no config.json"):
        DreamBenchScorer(clip=tmp_path)
    with pytest.raises(ValueError, match="cannot load CLIP model") as info:
        DreamBenchScorer(clip=tiny_dino)  # a Dinov2 folder is not a CLIPModel
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="need --dino and/or --clip"):
        DreamBenchScorer()


def test_vit_dino_checkpoint_without_pooler_loads(tmp_path):
    """Real DINO checkpoints (facebook/dino-vits16) have no ViT pooler weights: that must not count as missing."""
    from transformers import BitImageProcessor, ViTConfig, ViTModel

    config = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       image_size=32, patch_size=8)
    ViTModel(config, add_pooling_layer=False).save_pretrained(tmp_path)
    BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    scorer = DreamBenchScorer(dino=tmp_path)
    [s] = scorer.score([_image(7)], scorer.references([_image(8)]), "x")
    assert -1.0 - 1e-5 <= s["dino"] <= 1.0 + 1e-5

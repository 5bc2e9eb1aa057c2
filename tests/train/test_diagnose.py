"""The demo model's diagnosis functions (train/diagnose.py) on the tiny random-weight pipeline: shapes, ranges
and that looking inside the attention does not change what it computes."""
import pytest
import torch

from squeeze_studio.synth.dataset import load_jsonl, make_dataset
from squeeze_studio.testing.tiny import build_autoencoder_kl, build_tiny_pipeline
from squeeze_studio.train import diagnose


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    make_dataset(folder, 4, seed=0, split="train", max_refs=1, identity_prob=0.5)
    pipe = build_tiny_pipeline(vae=build_autoencoder_kl(blocks=3))
    pipe.vae.register_to_config(scaling_factor=1.0, shift_factor=0.0)
    records = load_jsonl(folder)
    return pipe, records, diagnose.copy_examples(pipe, records, 64)


def test_copy_examples_target_their_reference_under_the_null_conditioning(setup):
    pipe, records, examples = setup
    for example in examples:
        assert torch.equal(example.target, example.references) and example.grids == [(1, 8, 8)]
        assert example.subject.shape == (64,) and 0 < example.subject.sum() < 64
        assert not example.positive_image.any()


def test_probe_loss_sees_the_references(setup):
    pipe, _, examples = setup
    with_refs = diagnose.probe_loss(pipe, examples, 0.5, True, 64)
    without = diagnose.probe_loss(pipe, examples, 0.5, False, 64)
    assert with_refs["all"] > 0 and with_refs["subject"] > 0
    assert with_refs["all"] != without["all"]


def test_attention_mass_is_a_share_and_leaves_the_output_alone(setup):
    pipe, _, examples = setup
    masses = diagnose.attention_mass(pipe, examples, 0.5, 64)
    assert len(masses) == len(pipe.transformer.transformer_blocks)
    for layer in masses:
        assert 0 < layer["same_place"] < layer["reference"] < 1
    stock = diagnose.AttentionMass(64, 64)
    stock._text = 3
    q, k, v = (torch.randn(1, 2, 3 + 128, 8, generator=torch.Generator().manual_seed(i)) for i in range(3))
    bias = torch.zeros(1, 1, 1, 3 + 128)
    bias[..., 0] = float("-inf")  # a padded text token
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    torch.testing.assert_close(stock._attend(q, k, v, bias), expected, rtol=1e-5, atol=1e-5)


def test_tokens_per_subject_and_the_vae_ceiling(setup):
    pipe, records, _ = setup
    counts = diagnose.tokens_per_subject(records, 64, 8)
    assert counts["tokens_per_image"] == 64
    for where in ("target", "reference"):
        assert 0 < counts[where]["half"] <= counts[where]["any"] < 64
    ceiling = diagnose.vae_ceiling(pipe.vae, records, 64)
    assert set(ceiling) == {"psnr", "subject_psnr"}


def test_more_rotary_dimensions_separate_places_better():
    v4, v5 = diagnose.rope_separation(8, 8), diagnose.rope_separation(14, 8)  # v4's 16/8/8 and v5's 4/14/14 axes
    assert 0 < v4 < v5 < 2
    assert diagnose.rope_separation(2, 8) < 0.1  # one frequency of 1 rad per token: 6 places away looks alike


@pytest.mark.parametrize("name, axes", [("v4", (16, 8, 8)), ("v5", (4, 14, 14))])
def test_train_demo_recipe_option_picks_the_recipe(monkeypatch, tmp_path, name, axes):
    from squeeze_studio import cli
    from squeeze_studio.train import demo

    seen = {}
    monkeypatch.setattr(demo, "build_demo", lambda out, work, recipe: seen.update(recipe=recipe) or {"seconds": 0})
    assert cli.main(["train", "demo", "--recipe", name, "--out", str(tmp_path / "m"), "--work", str(tmp_path)]) == 0
    assert tuple(seen["recipe"].rope_axes) == axes and seen["recipe"].use_references


def test_aligned_share_counts_targets_placed_as_a_reference(setup):
    _, records, _ = setup
    moved = {**records[0], "meta": {**records[0]["meta"], "references": [{**records[0]["meta"]["target"]}]}}
    assert diagnose.aligned_share([moved]) == 1.0 and 0 <= diagnose.aligned_share(records) <= 1

"""The demo model's diagnosis functions (train/diagnose.py) on the tiny random-weight pipeline: shapes, ranges
and that looking inside the attention does not change what it computes."""
import pytest
import torch

from squeeze_studio.backbones import ReferenceTokens
from squeeze_studio.synth.dataset import load_jsonl, make_dataset
from squeeze_studio.testing.tiny import build_autoencoder_kl
from squeeze_studio.train import diagnose
from squeeze_studio.train.encode import null_states
from squeeze_studio.train.trainer import FlowMatchingStep


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_pipeline):
    folder = tmp_path_factory.mktemp("synth")
    make_dataset(folder, 2, seed=0, split="train", max_refs=1, identity_prob=0.5)
    records = load_jsonl(folder)
    return tiny_pipeline, records, diagnose.copy_examples(tiny_pipeline, records, 64)


def test_copy_examples_target_their_reference_under_the_null_conditioning(setup):
    pipe, records, examples = setup
    side = 64 // (pipe.backbone.vae_scale_factor * 2)  # tokens per side
    for example in examples:
        assert torch.equal(example.target, example.references) and example.grids == [(1, side, side)]
        assert example.subject.shape == (side * side,) and 0 < example.subject.sum() < side * side
        assert not example.positive_image.any()


def test_probe_loss_sees_the_references(setup):
    pipe, _, examples = setup
    with_refs = diagnose.probe_loss(pipe, examples, 0.5, True, 64)
    without = diagnose.probe_loss(pipe, examples, 0.5, False, 64)
    assert with_refs["all"] > 0 and with_refs["subject"] > 0
    assert with_refs["all"] != without["all"]


def test_attention_mass_is_a_share_and_leaves_the_output_alone(setup):
    pipe, _, examples = setup
    processors = dict(pipe.transformer.attn_processors)
    refs = ReferenceTokens(torch.stack([e.references for e in examples]), examples[0].grids)
    x, t = torch.stack([e.target for e in examples]), torch.full((len(examples),), 0.5)
    conditioning = FlowMatchingStep(pipe, pipe.connector, pipe.transformer, null_states(pipe), 64).conditioning(
        examples, "null")
    stock = pipe.backbone.predict(x, t, conditioning, refs, 64, 64)
    pipe.transformer.set_attn_processor(diagnose.AttentionMass(x.shape[1], refs.tokens.shape[1]))
    try:  # the same output, rotary embedding and text mask included
        torch.testing.assert_close(pipe.backbone.predict(x, t, conditioning, refs, 64, 64), stock)
    finally:
        pipe.transformer.set_attn_processor(dict(processors))  # diffusers empties the dict it is given
    masses = diagnose.attention_mass(pipe, examples, 0.5, 64)
    assert len(masses) == len(pipe.transformer.transformer_blocks)
    assert pipe.transformer.attn_processors == processors  # the stock processors are back
    for layer in masses:
        assert 0 < layer["same_place"] < layer["reference"] < 1
    recorder = diagnose.AttentionMass(64, 64)
    recorder._text = 3
    q, k, v = (torch.randn(1, 2, 3 + 128, 8, generator=torch.Generator().manual_seed(i)) for i in range(3))
    bias = torch.zeros(1, 1, 1, 3 + 128)
    bias[..., 0] = float("-inf")  # a padded text token
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    torch.testing.assert_close(recorder._attend(q, k, v, bias), expected, rtol=1e-5, atol=1e-5)


def test_tokens_per_subject_and_the_vae_ceiling(setup):
    pipe, records, _ = setup
    counts = diagnose.tokens_per_subject(records, 64, 8)
    assert counts["tokens_per_image"] == 64
    for where in ("target", "reference"):
        assert 0 < counts[where]["half"] <= counts[where]["any"] < 64
    ceiling = diagnose.vae_ceiling(build_autoencoder_kl(blocks=3), records, 64)  # the demo's kind of VAE
    assert set(ceiling) == {"psnr", "subject_psnr"}


def test_more_rotary_dimensions_separate_places_better():
    v4, v5 = diagnose.rope_separation(8, 8), diagnose.rope_separation(14, 8)  # v4's 16/8/8 and v5's 4/14/14 axes
    assert 0 < v4 < v5 < 2
    assert diagnose.rope_separation(2, 8) < 0.1  # one frequency of 1 rad per token: 6 places away looks alike


@pytest.mark.parametrize("name, curriculum", [("v4", 0), ("v5", 3000)])
def test_train_demo_recipe_option_picks_the_recipe(monkeypatch, tmp_path, name, curriculum):
    from squeeze_studio import cli
    from squeeze_studio.train import demo

    seen = {}
    monkeypatch.setattr(demo, "build_demo", lambda out, work, recipe, start_from: seen.update(
        recipe=recipe, start_from=start_from) or {"seconds": 0})
    argv = ["train", "demo", "--recipe", name, "--out", str(tmp_path / "m"), "--work", str(tmp_path)]
    assert cli.main([*argv, "--start-from", "v4-folder"]) == 0
    recipe = seen["recipe"]
    assert recipe.copy_steps + recipe.transform_steps == curriculum and recipe.use_references
    assert seen["start_from"] == "v4-folder"


def test_reference_gain_compares_the_subject_error_with_and_without_references(setup):
    from squeeze_studio.train.encode import encode_records

    pipe, records, _ = setup
    gain = diagnose.reference_gain(pipe, encode_records(pipe, records, 64), 64, "text", ts=(0.5,))
    measured = gain["t=0.5"]
    assert measured["ratio_subject"] == measured["with"]["subject"] / measured["without"]["subject"] != 1.0


def test_aligned_share_counts_targets_placed_as_a_reference(setup):
    _, records, _ = setup
    moved = {**records[0], "meta": {**records[0]["meta"], "references": [{**records[0]["meta"]["target"]}]}}
    assert diagnose.aligned_share([moved]) == 1.0 and 0 <= diagnose.aligned_share(records) <= 1

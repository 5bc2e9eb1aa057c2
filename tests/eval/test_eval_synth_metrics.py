"""Aggregation of SynthSubjects scores, on outputs whose answers are known: exact targets, copied
references, and hand-made detector results."""
import math

import numpy as np
import pytest
from PIL import Image

from squeeze_studio.eval.data import Truth
from squeeze_studio.eval.synth_metrics import (
    ATTRIBUTES,
    PSNR_CAP_DB,
    SynthScore,
    aggregate,
    fit_to,
    reported_attributes,
    score_output,
)
from squeeze_studio.synth.dataset import make_example
from squeeze_studio.synth.scene import Attributes
from squeeze_studio.synth.subjects import make_subject


def _truth(ex) -> Truth:
    return Truth(ex.subject, ex.target_attrs, tuple(ex.reference_attrs), ex.instructed, ex.variant)


@pytest.fixture(scope="module")
def examples():
    """Standard test-split examples (each asks for a pose or place no reference shows)."""
    return [make_example(0, "test", i, style_prob=0.3) for i in range(5)]


def test_exact_targets_score_perfectly(examples):
    scores = [score_output(ex.target, ex.target, ex.target_mask, _truth(ex)) for ex in examples]
    result = aggregate(scores)
    assert result["n"] == 5
    assert result["psnr"] == result["subject_psnr"] == result["aligned_subject_psnr"] == PSNR_CAP_DB
    assert all(v == 1.0 for v in result["adherence"].values())
    assert result["adherence_instructed"] == 1.0
    assert result["identity_retrieval"]["top1"] == 1.0 and result["identity_retrieval"]["mean_rank"] == 0.0
    assert result["identity_retrieval"]["gallery"] == len({ex.subject.seed for ex in examples})
    assert result["identity_retrieval"]["chance"] == pytest.approx(1 / result["identity_retrieval"]["gallery"])
    assert result["copy_paste"]["rate"] == 0.0
    changed = [ex for ex in examples if all(r.orientation != ex.target_attrs.orientation for r in ex.reference_attrs)]
    assert result["orientation_changed"]["n"] == len(changed)
    if changed:
        assert result["orientation_changed"]["accuracy"] == 1.0


def test_the_mean_rank_is_the_true_subjects_place_in_the_gallery(examples):
    """Each output the exact target of the next example's subject: the true subject is never first, and the mean
    rank reads where it fell, as a fraction of the gallery."""
    scores = [score_output(examples[(i + 1) % len(examples)].target, ex.target, ex.target_mask, _truth(ex))
              for i, ex in enumerate(examples)]
    result = aggregate(scores)["identity_retrieval"]
    assert result["top1"] == 0.0 and 0 < result["mean_rank"] <= 1


def test_copied_references_are_copy_paste(examples):
    scores = [score_output(ex.references[0], ex.target, ex.target_mask, _truth(ex)) for ex in examples]
    result = aggregate(scores)
    assert result["copy_paste"]["eligible"] > 0
    assert result["copy_paste"]["rate"] == 1.0
    assert result["adherence"]["position"] < 1.0
    assert result["subject_psnr"] < 30


def test_scores_accept_outputs_of_another_size(examples):
    ex = examples[0]
    big = np.asarray(Image.fromarray(ex.target).resize((128, 128)))
    assert fit_to(big, ex.target).shape == ex.target.shape
    score = score_output(big, ex.target, ex.target_mask, _truth(ex))
    assert score.detected["position"] == ex.target_attrs.position
    record = score.to_record()
    assert set(record) == {"psnr", "subject_psnr", "aligned_subject_psnr", "detected", "adherence",
                           "orientation_correct", "copy_paste"}


def _hand_made(detected: dict, target: Attributes, refs, instructed) -> SynthScore:
    truth = Truth(make_subject(3), target, tuple(refs), tuple(instructed))
    correct = {k: detected.get(k) == getattr(target, k) for k in ATTRIBUTES}
    blank = np.zeros((24, 24, 3), np.uint8)
    return SynthScore(20.0, math.inf, math.nan, detected, correct, truth, blank, np.ones((24, 24), bool))


def test_aggregation_arithmetic_on_hand_made_detections():
    target = Attributes("red", "plain", "top left", "small", "upside down")
    ref = Attributes("blue", "plain", "center", "large", "upright")
    right = dict(target.to_dict())
    copied = dict(ref.to_dict())
    half = {**right, "position": "center", "scale": "large"}  # 2 of the 4 instructed keys wrong
    instructed = ("position", "scale")  # + background (and its pattern) below
    scores = [_hand_made(d, target, [ref], ("background", *instructed)) for d in (right, copied, half)]
    result = aggregate(scores)
    assert "style" not in result["adherence"]  # nobody asked for a style
    assert result["adherence"]["position"] == pytest.approx(1 / 3)
    # per example over (background, bg_pattern, position, scale): 1, 1/4 (pattern matches), 1/2
    assert result["adherence_instructed"] == pytest.approx((1 + 0.25 + 0.5) / 3)
    assert result["copy_paste"] == {"rate": pytest.approx(1 / 3), "copies": 1, "eligible": 3}
    assert result["orientation_changed"]["n"] == 3
    assert result["psnr"] == 20.0 and result["subject_psnr"] == PSNR_CAP_DB
    assert result["aligned_subject_psnr"] is None  # every value was nan


def test_copy_paste_is_not_eligible_when_a_reference_already_shows_the_target_pose():
    target = Attributes(position="left", orientation="mirrored")
    same_pose = Attributes(background="blue", position="left", orientation="mirrored")
    result = aggregate([_hand_made(target.to_dict(), target, [same_pose], ("background",))])
    assert result["copy_paste"] == {"rate": None, "copies": 0, "eligible": 0}
    assert result["orientation_changed"] == {"accuracy": None, "n": 0}


def test_style_is_reported_when_the_set_has_styles():
    styled = Attributes(style="pastel")
    scores = [_hand_made(styled.to_dict(), styled, [Attributes(position="top")], ("style",))]
    assert "style" in reported_attributes(scores)
    assert aggregate(scores)["adherence"]["style"] == 1.0

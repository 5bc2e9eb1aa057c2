"""The copy-paste validation's pieces: the jittered paste, the threshold choice and precision/recall with
intervals over examples (the model-made outputs and the labels are the eval's own, tested elsewhere)."""
import numpy as np
import pytest
from PIL import Image

from squeeze_studio.copy_paste import copy_paste
from squeeze_studio.eval.copy_paste_check import agreement, choose_threshold, jittered
from squeeze_studio.eval.intervals import ratio_interval
from squeeze_studio.synth.scene import Attributes, render_scene
from squeeze_studio.synth.subjects import make_subject


def item(example, source, label, score):
    return {"example": example, "source": source, "label": label, "score": score, "reference": 0}


def test_a_jittered_paste_keeps_its_size_and_still_reads_as_pasted():
    reference = Image.fromarray(render_scene(make_subject(5), Attributes(background="teal"), 64)[0])
    moved = jittered(reference, np.random.default_rng(0))
    assert moved.size == reference.size and moved.tobytes() != reference.tobytes()
    assert copy_paste(moved, [reference]).over


def test_the_threshold_and_precision_recall_follow_the_labels():
    items = [item(e, "copy", True, 0.9) for e in range(6)] + [item(e, "model", False, 0.3) for e in range(6)]
    items += [item(6, "model", True, 0.2), item(7, "moved", False, 0.95)]  # a miss and a false alarm
    threshold = choose_threshold(items)
    assert threshold == 0.31  # the lowest of the thresholds with the best F1 (0.31 to 0.90)
    out = agreement(items, threshold)
    assert out["precision"]["value"] == out["recall"]["value"] == pytest.approx(6 / 7, abs=1e-4)
    low, high = out["recall"]["ci95"]
    assert low <= 6 / 7 <= high < 1.0 + 1e-9
    assert out["sources"]["moved"] == {"outputs": 1, "labelled_copy_paste": 0, "flagged": 1,
                                       "flagged_when_labelled": 0, "median_score": 0.95}


def test_a_ratio_with_nothing_to_divide_by_has_no_interval():
    assert ratio_interval(np.zeros(4), np.zeros(4)) is None
    assert ratio_interval(np.ones(4), np.ones(4)) == [1.0, 1.0]

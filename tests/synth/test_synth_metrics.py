"""Metrics and detectors on hand-made cases and on the renderer's own output."""
import math

import numpy as np
import pytest

from squeeze_studio.synth.dataset import make_example
from squeeze_studio.synth.metrics import (
    adherence,
    aligned_subject_psnr,
    bbox,
    copy_paste_rate,
    detect_count,
    detect_orientation,
    detect_position,
    detect_scale,
    detect_style,
    estimate_background,
    foreground_mask,
    is_copy_paste,
    label_components,
    psnr,
    read_attributes,
    retrieval_accuracy,
    retrieval_ranks,
    subject_crop,
    subject_gallery,
    subject_psnr,
)
from squeeze_studio.synth.scene import Attributes, compatible_backgrounds, render_scene
from squeeze_studio.synth.subjects import make_subject

KEYS = ("background", "bg_pattern", "position", "scale", "count", "orientation", "style")


@pytest.fixture(scope="module")
def scenes():
    """40 random targets (some with styles) from train and test, at 64 px."""
    return [make_example(11, split, i, style_prob=0.3) for split in ("train", "test") for i in range(20)]


def test_psnr_perfect_target_is_inf_and_known_error_is_exact():
    a = np.full((8, 8, 3), 100, np.uint8)
    assert psnr(a, a) == math.inf
    b = a.copy()
    b[0, 0] = 110  # one pixel off by 10 in all channels: mse = 100 / 64
    assert psnr(b, a) == pytest.approx(10 * math.log10(255**2 / (100 / 64)))
    mask = np.zeros((8, 8), bool)
    mask[0, 0] = True
    assert psnr(b, a, mask) == pytest.approx(10 * math.log10(255**2 / 100))
    assert math.isnan(psnr(b, a, np.zeros((8, 8), bool)))


def test_subject_psnr_ignores_the_background():
    ex = make_example(0, "val", 0)
    out = ex.target.copy()
    out[~ex.target_mask] = 0
    assert subject_psnr(out, ex.target, ex.target_mask) == math.inf
    assert psnr(out, ex.target) < 20


def test_aligned_subject_psnr_forgives_placement_but_not_identity():
    subject, other_subject = make_subject(42), make_subject(43)
    bg = next(c for c in compatible_backgrounds(subject) if c in compatible_backgrounds(other_subject))
    target, mask = render_scene(subject, Attributes(bg, position="top left"))
    moved, _ = render_scene(subject, Attributes(bg, position="bottom right"))
    other, _ = render_scene(other_subject, Attributes(bg, position="bottom right"))
    assert aligned_subject_psnr(target, target, mask) == math.inf
    assert subject_psnr(moved, target, mask) < 12
    assert aligned_subject_psnr(moved, target, mask) > 20  # only the sub-pixel edges differ
    assert aligned_subject_psnr(other, target, mask) < aligned_subject_psnr(moved, target, mask) - 10


def test_label_components_counts_8_connected_pieces():
    m = np.zeros((6, 8), bool)
    m[0, 0] = m[1, 1] = True  # diagonal neighbours: one piece
    m[3:5, 3:6] = True
    m[0, 7] = True
    labels, n = label_components(m)
    assert n == 3 and labels[0, 0] == labels[1, 1] != labels[3, 3]
    assert label_components(np.zeros((4, 4), bool))[1] == 0
    assert bbox(m[3:5]) == (0, 2, 3, 6)


def test_background_and_foreground_from_a_hand_made_image():
    image = np.zeros((20, 20, 3), np.uint8)
    image[:] = (40, 80, 215)  # blue
    image[5:9, 5:9] = (245, 212, 40)
    image[12:16, 12:16] = (245, 212, 40)
    bg = estimate_background(image)
    assert (bg.name, bg.pattern) == ("blue", "plain")
    fg = foreground_mask(image)
    assert fg.sum() == 32 and detect_count(fg) == 2


def test_detectors_read_back_the_renderer(scenes):
    """Each attribute is read back from the renderer's output in >= 95 % of random scenes."""
    hits = {k: 0 for k in KEYS}
    for ex in scenes:
        got = read_attributes(ex.target, ex.subject)
        for k in KEYS:
            hits[k] += got[k] == getattr(ex.target_attrs, k)
    accuracy = {k: v / len(scenes) for k, v in hits.items()}
    assert min(accuracy.values()) >= 0.95, accuracy


def test_single_detectors_agree_with_read_attributes(scenes):
    ex = scenes[0]
    mask = foreground_mask(ex.target)
    t = ex.target_attrs
    assert (detect_position(mask), detect_scale(mask), detect_count(mask)) == (t.position, t.scale, t.count)
    assert detect_orientation(ex.target, ex.subject, style=t.style) == t.orientation
    assert detect_style(ex.target, ex.subject, t.orientation) == t.style
    assert all(adherence(read_attributes(ex.target, ex.subject), t, KEYS).values())


def test_detectors_on_an_empty_image_return_none():
    blank = np.full((32, 32, 3), 200, np.uint8)
    got = read_attributes(blank, make_subject(1))
    assert got["position"] is None and got["count"] is None and got["orientation"] is None


def test_copy_paste_of_an_unchanged_reference_is_counted():
    ex = next(e for e in (make_example(2, "train", i) for i in range(50))
              if all((r.position, r.orientation) != (e.target_attrs.position, e.target_attrs.orientation)
                     for r in e.reference_attrs))
    copied = read_attributes(ex.references[0], ex.subject)  # the model returned reference 1 unchanged
    good = read_attributes(ex.target, ex.subject)
    assert is_copy_paste(copied, ex.target_attrs, ex.reference_attrs) is True
    assert is_copy_paste(good, ex.target_attrs, ex.reference_attrs) is False
    rate = copy_paste_rate([copied, good], [ex.target_attrs] * 2, [ex.reference_attrs] * 2)
    assert rate == {"rate": 0.5, "copies": 1, "eligible": 2}


def test_copy_paste_skips_examples_that_asked_for_the_reference_pose():
    ref = Attributes(position="left", orientation="mirrored")
    target = Attributes(background="red", position="left", orientation="mirrored")
    assert is_copy_paste({"position": "left", "orientation": "mirrored"}, target, [ref]) is None
    assert math.isnan(copy_paste_rate([{}], [target], [[ref]])["rate"])
    # only position was asked to change: keeping the reference position is the copy
    target = Attributes(position="right", orientation="mirrored")
    assert is_copy_paste({"position": "left", "orientation": "mirrored"}, target, [ref]) is True
    assert is_copy_paste({"position": "right", "orientation": "mirrored"}, target, [ref]) is False


def test_identity_retrieval_finds_the_rendered_subject():
    subjects = [make_subject(s) for s in range(100, 130)]
    crops, masks, truth = [], [], []
    for i, subject in enumerate(subjects[:12]):
        background = "white" if subject.body_colour != "white" else "black"
        if background in (subject.part_colour, subject.mark_colour):
            continue
        image, mask = render_scene(subject, Attributes(background, position="right", scale="large"))
        crop, crop_mask = subject_crop(image, mask)
        crops.append(crop), masks.append(crop_mask), truth.append(i)
    ranks = retrieval_ranks(np.stack(crops), np.stack(masks), subject_gallery(subjects), truth)
    assert retrieval_accuracy(ranks, k=1) >= 0.9 and ranks.shape == (len(truth),)
    shuffled = retrieval_ranks(np.stack(crops), np.stack(masks), subject_gallery(subjects), truth[::-1])
    assert retrieval_accuracy(shuffled, k=1) < 0.5

"""Subjects and scenes: identities are unique, renders are deterministic and show every attribute."""
import dataclasses
import itertools

import numpy as np
import pytest

from squeeze_studio.synth.scene import (
    ORIENTATIONS,
    Attributes,
    compatible_backgrounds,
    copy_boxes,
    render_scene,
    render_sprite,
)
from squeeze_studio.synth.subjects import PALETTES, SUBJECT_SPACE, make_subject


def test_same_seed_renders_identical_bytes():
    attrs = Attributes("blue", "striped", "top left", "large", "upside down", 1, "outlined")
    a, mask_a = render_scene(make_subject(123), attrs)
    b, mask_b = render_scene(make_subject(123), attrs)
    assert a.dtype == np.uint8 and a.shape == (64, 64, 3) and mask_a.shape == (64, 64)
    assert a.tobytes() == b.tobytes() and mask_a.tobytes() == mask_b.tobytes()


def test_different_subject_seeds_give_different_images():
    images = []
    for seed in range(40):
        subject = make_subject(seed)
        background = compatible_backgrounds(subject)[0]
        images.append(render_scene(subject, Attributes(background=background, scale="large"))[0])
    for a, b in itertools.combinations(images, 2):
        assert not np.array_equal(a, b)


def test_seeds_map_to_unique_identities():
    identities = {dataclasses.replace(make_subject(s), seed=0) for s in range(3000)}
    assert len(identities) == 3000
    assert dataclasses.replace(make_subject(SUBJECT_SPACE + 5), seed=5) == make_subject(5)


@pytest.mark.parametrize("seed", range(0, 400, 20))
def test_every_orientation_is_visible(seed):
    """No subject looks the same in two orientations: at least 3 % of a 32 px sprite's pixels change."""
    subject = make_subject(seed)
    renders = [render_sprite(subject, 32, o)[0].astype(int) for o in ORIENTATIONS]
    for a, b in itertools.combinations(renders, 2):
        changed = (np.abs(a - b).max(axis=-1) > 60).mean()
        assert changed > 0.03


def test_mask_covers_the_subject_and_scales_with_size():
    subject = make_subject(7)
    background = compatible_backgrounds(subject)[0]
    for size in (32, 64, 96):
        image, mask = render_scene(subject, Attributes(background=background), size)
        assert image.shape == (size, size, 3)
        box_side = copy_boxes(Attributes(), size)[0][2]
        ys, xs = np.nonzero(mask)
        assert abs(max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 - box_side) <= 1.5
        assert (image[~mask] == image[0, 0]).mean() > 0.9  # outside the mask: background


def test_copies_and_positions_stay_inside_the_image():
    for position in ("top left", "bottom right", "center"):
        for scale, count in (("large", 1), ("small", 3), ("small", 2)):
            for x0, y0, side in copy_boxes(Attributes(position=position, scale=scale, count=count), 64):
                assert x0 >= 0 and y0 >= 0 and x0 + side <= 64 and y0 + side <= 64


def test_every_palette_has_a_plain_background_in_every_style():
    from squeeze_studio.synth.scene import STYLES
    from squeeze_studio.synth.subjects import Subject

    for body, part, mark in PALETTES:
        subject = Subject(0, "circle", ("ears",), body, part, mark, "plain", "dot", "top left")
        for style in STYLES:
            assert compatible_backgrounds(subject, style, "plain")


def test_bad_attribute_is_a_clear_error():
    with pytest.raises(ValueError, match="orientation must be one of"):
        Attributes(orientation="sideways")

"""The copy-paste score on rendered SynthSubjects scenes (exact renders, not model outputs), and its record in
the PNG recipe."""
import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from squeeze_studio.copy_paste import THRESHOLD, CopyPaste, best_offset, copy_paste
from squeeze_studio.recipe import PARAMETERS_KEY, RECIPE_KEY, inspect_recipe, save_png
from squeeze_studio.request import GenerationRequest
from squeeze_studio.synth.scene import Attributes, render_scene
from squeeze_studio.synth.subjects import make_subject

SUBJECT = make_subject(3)
SCENE = Attributes(background="orange", position="left", orientation="upright", scale="medium")


def scene(size: int = 64, **changes) -> Image.Image:
    return Image.fromarray(render_scene(SUBJECT, replace(SCENE, **changes), size)[0])


def test_the_reference_itself_and_a_nudged_copy_look_pasted_a_new_pose_or_place_does_not():
    reference = scene()
    nudged = Image.fromarray(np.roll(np.asarray(scene(size=70)), (2, -3), axis=(0, 1))[3:67, 3:67])  # moved, 9 % larger
    zoomed = scene(size=80).crop((8, 8, 72, 72))  # 25 % larger, same centre
    assert copy_paste(reference, [reference]).score == pytest.approx(1.0)
    assert copy_paste(nudged, [reference]).over and copy_paste(zoomed, [reference]).over
    for changed in (scene(position="right"), scene(orientation="upside down"), scene(position="top right")):
        assert not copy_paste(changed, [reference]).over
    # a small subject turned on the same plain background: the shared flat area must not make it a paste
    assert not copy_paste(scene(scale="small", orientation="upside down"), [scene(scale="small")]).over


def test_each_reference_gets_a_score_and_the_best_is_named():
    other = scene(background="teal", position="bottom right", orientation="mirrored")
    found = copy_paste(scene(), [other, scene()], threshold=0.7)
    assert len(found.scores) == 2 and found.reference == 1 and found.score == max(found.scores)
    assert found.over == (found.score >= 0.7)
    assert copy_paste(scene(size=256), [scene()]).over  # the sizes need not match
    with pytest.raises(ValueError, match="at least one reference"):
        copy_paste(scene(), [])


def test_the_alignment_finds_a_known_shift_either_way():
    rng = np.random.default_rng(0)
    a = rng.random((40, 50))
    assert best_offset(a, a[5:30, 8:40], 0.9) == (5, 8, 1.0)
    assert best_offset(a[5:30, 8:40], a, 0.9) == (-5, -8, 1.0)
    assert best_offset(a[:, 10:], a[:, :40], 0.5) == (0, -10, 0.75)  # a shift that costs a quarter of the overlap
    assert best_offset(a[:, 10:], a[:, :40], 0.8)[2] >= 0.8  # out of reach: the best placement within it


def test_the_score_is_written_into_the_recipe_and_read_back(tmp_path):
    request = GenerationRequest(instruction="the toy on the right", references=["/a.png", "/b.png"])
    found = CopyPaste((0.2, 0.93), 1, 0.93, THRESHOLD)
    path = save_png(scene(), tmp_path / "r.png", request, copy_paste=found)
    with Image.open(path) as image:
        assert "Copy-paste: 0.93 from reference 2" in image.info[PARAMETERS_KEY]
        stored = json.loads(image.info[RECIPE_KEY])
    assert stored["copy_paste"]["reference"] == 1 and stored["copy_paste"]["over_threshold"] == found.over
    check = inspect_recipe(path)
    assert check.request == request and check.copy_paste == found
    assert inspect_recipe(save_png(scene(), tmp_path / "none.png", request)).copy_paste is None


@pytest.mark.parametrize("bad", ["high", {"scores": [0.5], "reference": 3, "threshold": 0.5},
                                 {"scores": [9.0], "reference": 0, "threshold": 0.5},
                                 {"scores": [0.5], "reference": True, "threshold": 0.5}])
def test_a_malformed_score_in_a_dropped_png_is_ignored_not_fatal(tmp_path, bad):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(RECIPE_KEY, json.dumps({"version": 1, "request": {"instruction": "x"}, "copy_paste": bad}))
    path = tmp_path / "hostile.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    check = inspect_recipe(path)
    assert check.request is not None and check.copy_paste is None and check.problem == ""

"""Examples, splits, held-out combinations and the JSONL layout."""
import json

import numpy as np
import pytest

from squeeze_studio.synth.dataset import (
    HELD_OUT,
    is_held_out,
    load_image,
    load_jsonl,
    load_mask,
    make_dataset,
    make_example,
    subject_split,
)
from squeeze_studio.synth.scene import ORIENTATIONS, POSITIONS, Attributes, render_scene


def _examples(split, n, seed=0, **kw):
    return [make_example(seed, split, i, 32, **kw) for i in range(n)]


def test_examples_are_deterministic_and_index_addressable():
    a, b = make_example(5, "train", 17), make_example(5, "train", 17)
    assert a.instruction == b.instruction and a.meta() == b.meta()
    assert a.target.tobytes() == b.target.tobytes()
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a.references, b.references, strict=True))
    assert make_example(6, "train", 17).meta() != a.meta()


def test_target_is_the_exact_render_of_its_attributes():
    ex = make_example(1, "val", 3)
    image, mask = render_scene(ex.subject, ex.target_attrs, 64)
    assert np.array_equal(image, ex.target) and np.array_equal(mask, ex.target_mask)
    assert 1 <= len(ex.references) <= 3


def test_splits_are_disjoint_by_subject_seed():
    seeds = {split: {ex.subject.seed for ex in _examples(split, 40)} for split in ("train", "val", "test")}
    assert not seeds["train"] & seeds["val"] and not seeds["train"] & seeds["test"]
    assert not seeds["val"] & seeds["test"]
    for split, group in seeds.items():
        assert all(subject_split(s) == split for s in group)
    shares = [subject_split(s) for s in range(2000)]
    assert 0.75 < shares.count("train") / 2000 < 0.85


def test_held_out_combinations_absent_from_train_and_present_in_test():
    for ex in _examples("train", 150) + _examples("val", 40):
        assert not ex.held_out and not is_held_out(ex.target_attrs)
        assert not any(is_held_out(r) for r in ex.reference_attrs)
    test = _examples("test", 60)
    held = [ex for ex in test if ex.held_out]
    assert len(held) >= 8 and all(is_held_out(ex.target_attrs) for ex in held)
    assert not any(is_held_out(r) for ex in test for r in ex.reference_attrs)
    # each held-out position and orientation is still seen in training on its own
    assert {p for p, _ in HELD_OUT} <= set(POSITIONS) and {o for _, o in HELD_OUT} <= set(ORIENTATIONS)


def test_instruction_names_what_the_target_specifies():
    for ex in _examples("train", 60):
        text = ex.instruction.lower()
        assert ex.target_attrs.background in text
        defaults = Attributes()
        for key in ("scale", "orientation", "count", "style"):
            if getattr(ex.target_attrs, key) != getattr(defaults, key):
                assert key in ex.instructed
        if ex.target_attrs.orientation == "upside down":
            assert "upside down" in text or "180" in text


def test_identity_pairs_keep_orientation_and_move_or_rebackground():
    for ex in _examples("train", 30, identity_prob=1.0):
        ref, tgt = ex.reference_attrs[0], ex.target_attrs
        assert ex.variant == "identity" and len(ex.references) == 1
        assert (tgt.orientation, tgt.scale, tgt.count) == (ref.orientation, ref.scale, 1)
        assert (tgt.position, tgt.background) != (ref.position, ref.background)


def test_copy_variant_keeps_the_reference_pose():
    for ex in _examples("test", 30, copy_variant=True):
        ref, tgt = ex.reference_attrs[0], ex.target_attrs
        assert ex.variant == "copy"
        assert (tgt.position, tgt.orientation, tgt.scale) == (ref.position, ref.orientation, ref.scale)
        assert tgt.background != ref.background and "position" not in ex.instructed


def test_make_dataset_and_load_jsonl_round_trip(tmp_path):
    path = make_dataset(tmp_path / "d", 4, seed=3, split="val", size=32)
    records = load_jsonl(path)
    assert len(records) == 4 and load_jsonl(tmp_path / "d")[0]["instruction"] == records[0]["instruction"]
    for i, rec in enumerate(records):
        ex = make_example(3, "val", i, 32)
        assert rec["instruction"] == ex.instruction
        assert np.array_equal(load_image(rec["output_image"]), ex.target)
        assert np.array_equal(load_mask(rec["output_mask"]), ex.target_mask)
        assert [load_image(p).tobytes() for p in rec["input_images"]] == [r.tobytes() for r in ex.references]
        assert rec["meta"]["subject_seed"] == ex.subject.seed and rec["meta"]["size"] == 32
        assert Attributes.from_dict(rec["meta"]["target"]) == ex.target_attrs
    raw = json.loads((tmp_path / "d" / "data.jsonl").read_text().splitlines()[0])
    assert not raw["output_image"].startswith("/")  # stored relative to the dataset folder


def test_load_jsonl_accepts_plain_omnigen2_records(tmp_path):
    lines = [
        {"task_type": "edit", "instruction": "a dog", "input_images": "a.png", "output_image": "b.png"},
        {"instruction": "no refs", "input_images": None, "output_image": "/abs/c.png"},
    ]
    f = tmp_path / "x.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    a, b = load_jsonl(f)
    assert a["input_images"] == [str(tmp_path / "a.png")] and a["task_type"] == "edit"
    assert a["output_mask"] is None and a["meta"] == {}
    assert b["input_images"] == [] and b["output_image"] == "/abs/c.png"


def test_load_jsonl_reports_the_bad_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"instruction": "x", "output_image": "y.png"}\n{not json\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        load_jsonl(f)

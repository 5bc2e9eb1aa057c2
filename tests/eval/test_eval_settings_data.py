"""Stage settings and dataset loading: parsing, the sweep grid, and one-line errors for bad input."""
import json

import numpy as np
import pytest

from squeeze_studio.eval.data import load_examples
from squeeze_studio.eval.settings import DEFAULT_SETTING, SWEEP, StageSetting, parse_taus, unique_settings


def test_parse_taus_and_names():
    s = parse_taus(" 0.95, 0.85")
    assert s == StageSetting(0.95, 0.85) == DEFAULT_SETTING
    assert s.name == "0.95/0.85" and "paper default" in s.label
    assert StageSetting(1, 0).label == "1/0 (MLLM+VAE every step)"
    assert unique_settings([s, parse_taus("0.95,0.85"), StageSetting(0, 0)]) == [s, StageSetting(0, 0)]


@pytest.mark.parametrize("text", ["0.9", "a,b", "0.5,0.9", "1.5,0", "0.9,0.8,0.7"])
def test_bad_taus_are_one_line_errors(text):
    with pytest.raises(ValueError) as info:
        parse_taus(text)
    assert "\n" not in str(info.value)


def test_sweep_covers_the_required_grid():
    pairs = {(s.tau1, s.tau2) for s in SWEEP}
    assert {(0, 0), (1, 0), (0.97, 0.90), (0.95, 0.85), (0.85, 0.70), (0.7, 0.5)} <= pairs


def test_load_examples_reads_the_truth(synth_data):
    examples = load_examples(synth_data, limit=3)
    assert [ex.index for ex in examples] == [0, 1, 2]
    ex = examples[0]
    assert ex.truth is not None and ex.truth.instructed
    refs = ex.load_references()
    assert len(refs) == len(ex.truth.references) and refs[0].mode == "RGB"
    target = ex.load_target()
    mask = ex.load_target_mask(target)
    assert mask.shape == target.shape[:2] and mask.any()
    ex.mask_path = None  # without the mask file the mask is re-rendered from the truth
    assert np.array_equal(ex.load_target_mask(target), mask)
    assert len(load_examples(synth_data / "data.jsonl")) == 4


def test_records_without_meta_have_no_truth(synth_data, tmp_path):
    line = json.loads((synth_data / "data.jsonl").read_text().splitlines()[0])
    line = {k: line[k] for k in ("instruction", "input_images", "output_image")}
    line["input_images"] = [str(synth_data / p) for p in line["input_images"]]
    line["output_image"] = str(synth_data / line["output_image"])
    (tmp_path / "data.jsonl").write_text(json.dumps(line) + "\n")
    [ex] = load_examples(tmp_path)
    assert ex.truth is None and ex.mask_path is None


def _write(tmp_path, text):
    (tmp_path / "data.jsonl").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing", "data not found"),
        (lambda p: p, "no data.jsonl"),
        (lambda p: _write(p, "{not json\n"), "not valid JSON"),
        (lambda p: _write(p, '{"instruction": "x"}\n'), "needs 'instruction' and 'output_image'"),
        (lambda p: _write(p, ""), "no examples"),
        (lambda p: _write(p, '{"instruction": "x", "output_image": "t.png"}\n'), "no input_images"),
        (lambda p: _write(p, '{"instruction": "x", "input_images": ["r.png"], "output_image": "t.png"}\n'),
         "image not found"),
    ],
)
def test_bad_data_is_a_one_line_error(tmp_path, make, message):
    with pytest.raises(ValueError, match=message) as info:
        load_examples(make(tmp_path))
    assert "\n" not in str(info.value)


def test_limit_must_be_positive(synth_data):
    with pytest.raises(ValueError, match="--limit"):
        load_examples(synth_data, limit=0)

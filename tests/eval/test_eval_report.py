"""Report writing, the markdown table and the figure, on hand-made reports (no model)."""
import json
import math

import numpy as np
import pytest

from squeeze_studio.eval.figures import plot_tradeoff
from squeeze_studio.eval.report import json_safe, markdown_table, write_json


def _report(synth: bool, dreambench: bool) -> dict:
    def block(dino, adherence, seconds=None):
        b = {"synth": None, "dreambench": None}
        if synth:
            b["synth"] = {"subject_psnr": 12.0 + dino, "aligned_subject_psnr": 13.0, "psnr": 11.0,
                          "identity_retrieval": {"top1": 0.5, "chance": 0.25, "gallery": 4},
                          "adherence_instructed": adherence, "orientation_changed": {"accuracy": None, "n": 0},
                          "copy_paste": {"rate": 1 - adherence, "copies": 1, "eligible": 2}}
        if dreambench:
            b["dreambench"] = {"n": 2, "dino": dino, "clip_i": 0.8, "clip_t": adherence}
        if seconds is not None:
            b["seconds_per_image"] = seconds
        return b

    return {
        "settings": [{"name": "0/0", "label": "0/0 (MLLM only)"}, {"name": "0.95/0.85", "label": "0.95/0.85"}],
        "results": {"0/0": block(0.6, 0.4, 1.0), "0.95/0.85": block(0.7, 0.6, 0.8)},
        "baselines": {"copy_reference": block(0.9, 0.1), "target": block(1.0, 1.0)},
        "counts": {"examples": 2, "synth_examples": 2 if synth else 0, "mllm_runs": 2},
        "generation": {"steps": 4},
    }


def test_json_safe_makes_strict_json(tmp_path):
    value = {"a": math.nan, "b": [math.inf, np.float32(0.5), np.int64(3)], "c": (True, None)}
    assert json_safe(value) == {"a": None, "b": [None, 0.5, 3], "c": [True, None]}
    path = write_json(value, tmp_path / "r.json")
    assert json.loads(path.read_text()) == {"a": None, "b": [None, 0.5, 3], "c": [True, None]}
    assert not (tmp_path / "r.json.partial").exists()


def test_write_json_errors_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="folder for --json not found"):
        write_json({}, tmp_path / "missing" / "r.json")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ValueError, match="cannot write"):
        write_json({}, tmp_path / "dir.json")


@pytest.mark.parametrize("synth, dreambench", [(True, False), (False, True), (True, True)])
def test_table_has_a_row_per_setting_and_baseline(synth, dreambench):
    table = markdown_table(_report(synth, dreambench))
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 4
    assert ("copy-paste" in rows[0]) == synth and ("clip_t" in rows[0]) == dreambench
    assert "0/0 (MLLM only)" in table and "baseline: target" in table


@pytest.mark.parametrize("synth, dreambench", [(True, False), (False, True)])
def test_figure_from_either_metric_family(tmp_path, synth, dreambench):
    path = plot_tradeoff(_report(synth, dreambench), tmp_path / "fig.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_figure_needs_something_to_plot(tmp_path):
    with pytest.raises(ValueError, match="--figure needs"):
        plot_tradeoff(_report(False, False), tmp_path / "fig.png")

"""``squeeze eval`` end to end with the tiny random model: report layout, figure, reproducibility,
DreamBench encoders, and one-line errors. Values from random weights are never asserted."""
import argparse
import contextlib
import io
import json
import subprocess
import sys

import pytest

from squeeze_studio.eval.cli import add_eval_parser, settings_from_args
from squeeze_studio.eval.settings import SWEEP

SETTINGS = ["--taus", "0.95,0.85", "--taus", "1,0"]


def _parse(argv):
    parser = argparse.ArgumentParser(prog="squeeze")
    add_eval_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["eval", *map(str, argv)])


def _run(argv) -> tuple[int, str]:
    args = _parse(argv)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = args.func(args)
    return rc, out.getvalue()


def _strict_json(path):
    def reject(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(path.read_text(), parse_constant=reject)


@pytest.fixture(scope="module")
def run(eval_model, synth_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval-out")
    rc, stdout = _run(["--data", synth_data, "--model", eval_model, "--json", out / "report.json", "--limit", 3,
                       "--steps", 2, *SETTINGS, "--figure", out / "fig.png", "--device", "cpu", "--quiet",
                       "--grid", out / "grid.png"])
    assert rc == 0
    return _strict_json(out / "report.json"), stdout, out


def test_report_layout(run):
    report, _, _ = run
    assert {"version", "data", "model", "device", "generation", "settings", "counts", "results", "baselines",
            "timing", "examples"} <= set(report)
    names = [s["name"] for s in report["settings"]]
    assert names == ["0.95/0.85", "1/0"]
    assert report["settings"][1]["stages"].startswith("0 MLLM-only | 2 joint")
    assert report["counts"] == {"examples": 3, "synth_examples": 3, "dreambench_metrics": [], "outputs": 6,
                                "mllm_runs": 3}  # one MLLM pass per example, shared by both settings
    assert set(report["baselines"]) == {"copy_reference", "target"}
    for block in [*report["results"].values(), *report["baselines"].values()]:
        synth = block["synth"]
        assert synth["n"] == 3 and block["dreambench"] is None
        assert {"psnr", "subject_psnr", "aligned_subject_psnr", "identity_retrieval", "adherence",
                "adherence_instructed", "orientation_changed", "copy_paste"} <= set(synth)
        assert {"background", "position", "scale", "orientation", "count"} <= set(synth["adherence"])
        assert all(v is None or 0 <= v <= 1 for v in synth["adherence"].values())
        assert synth["identity_retrieval"]["chance"] == pytest.approx(1 / synth["identity_retrieval"]["gallery"])
    for name in names:
        assert report["results"][name]["seconds_per_image"] > 0
    assert report["timing"]["encode_seconds_per_example"] > 0


def test_baselines_bracket_the_scale(run):
    report, _, _ = run
    target = report["baselines"]["target"]["synth"]
    assert target["adherence_instructed"] == 1.0 and target["copy_paste"]["rate"] == 0.0
    copy = report["baselines"]["copy_reference"]["synth"]
    assert copy["copy_paste"]["eligible"] > 0  # the fixed 3-example set has examples copy-paste can be judged on
    assert copy["copy_paste"]["rate"] == 1.0


def test_per_example_records(run):
    report, _, _ = run
    assert [r["index"] for r in report["examples"]] == [0, 1, 2]
    record = report["examples"][0]
    assert set(record["outputs"]) == {"0.95/0.85", "1/0", "copy_reference", "target"}
    assert {"subject_psnr", "detected", "adherence", "copy_paste"} <= set(record["outputs"]["1/0"])
    assert record["instructed"] and "subject_seed" in record
    assert isinstance(record["orientation_changed"], bool)
    assert isinstance(record["outputs"]["1/0"]["identity_top1"], bool)


def test_every_metric_has_an_interval_around_its_mean(run):
    """The 95 % intervals come from the per-example records; the records' means are the reported means."""
    from squeeze_studio.eval.intervals import per_example

    report, _, _ = run
    for name in ["0.95/0.85", "1/0", "copy_reference"]:
        block = report["results"].get(name) or report["baselines"][name]
        synth, values = block["synth"], per_example(report["examples"], name)
        assert sum(values["identity_top1"]) / 3 == pytest.approx(synth["identity_retrieval"]["top1"])
        assert values["subject_psnr"].mean() == pytest.approx(synth["subject_psnr"])
        for metric, mean in (("subject_psnr", synth["subject_psnr"]),
                             ("adherence_instructed", synth["adherence_instructed"])):
            low, high = synth["ci95"][metric]
            assert low - 1e-9 <= mean <= high + 1e-9


def test_markdown_table_and_figure(run):
    _, stdout, out = run
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    assert len(lines) == 2 + 2 + 2  # header, rule, two settings, two baselines
    assert "copy-paste" in lines[0] and "paper default" in stdout and "baseline: copy_reference" in stdout
    assert (out / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_grid_has_a_row_per_example_and_a_column_per_setting(run):
    from PIL import Image

    from squeeze_studio.eval.grid import CELL

    _, _, out = run
    with Image.open(out / "grid.png") as grid:
        assert grid.size == ((2 + 2) * CELL, 16 + 3 * CELL)  # reference, target, two settings; 3 examples


def test_reproducible_and_dreambench_path(run, eval_model, synth_data, tiny_dino, tiny_clip):
    """The same example and settings again (now with DINO/CLIP): identical synth scores (fixed seeds)."""
    from squeeze_studio.eval.evaluate import evaluate
    from squeeze_studio.eval.settings import parse_taus

    first, _, _ = run
    report = evaluate(synth_data, eval_model, [parse_taus("0.95,0.85"), parse_taus("1,0")], limit=1, steps=2,
                      device="cpu", dino=tiny_dino, clip=tiny_clip, progress=False)
    again, before = report["examples"][0]["outputs"], first["examples"][0]["outputs"]
    for name in ("0.95/0.85", "1/0"):
        assert again[name]["detected"] == before[name]["detected"]
        assert again[name]["psnr"] == pytest.approx(before[name]["psnr"])
    assert report["counts"]["dreambench_metrics"] == ["dino", "clip_i", "clip_t"]
    for block in [*report["results"].values(), *report["baselines"].values()]:
        db = block["dreambench"]
        assert db["n"] == 1 and all(-1.0 - 1e-5 <= db[k] <= 1.0 + 1e-5 for k in ("dino", "clip_i", "clip_t"))
    assert report["baselines"]["copy_reference"]["dreambench"]["dino"] == pytest.approx(
        report["examples"][0]["outputs"]["copy_reference"]["dino"])


def test_tau_sweep_and_default_settings():
    assert settings_from_args(_parse(["--data", "d", "--model", "m", "--json", "o", "--tau-sweep"])) == list(SWEEP)
    [default] = settings_from_args(_parse(["--data", "d", "--model", "m", "--json", "o"]))
    assert (default.tau1, default.tau2) == (0.95, 0.85)
    argv = ["--data", "d", "--model", "m", "--json", "o", "--tau-sweep", "--taus", "1,1,text"]
    more = settings_from_args(_parse(argv))
    assert more[:-1] == list(SWEEP) and more[-1].reading == "text" and more[-1].name == "1/1 text"
    assert "instruction text kept" in more[-1].label


def test_compare_pairs_two_settings_example_by_example(run, capsys):
    from squeeze_studio.cli import main
    from squeeze_studio.eval.compare import compare

    _, _, out = run
    report = out / "report.json"
    rows = {r["metric"]: r for r in compare(f"{report}:target", f"{report}:copy_reference")}
    assert rows["adherence_instructed"]["a"] == 1.0  # the target itself follows every instruction
    assert rows["adherence_instructed"]["delta"] == pytest.approx(1.0 - rows["adherence_instructed"]["b"])
    same = {r["metric"]: r for r in compare(f"{report}:1/0", f"{report}:1/0")}
    assert same["subject_psnr"]["delta"] == 0 and same["subject_psnr"]["verdict"] == "no difference measured"
    assert main(["compare", f"{report}:0.95/0.85", f"{report}:1/0"]) == 0
    assert "| subject PSNR |" in capsys.readouterr().out
    assert main(["compare", f"{report}:0.5/0.5", f"{report}:1/0"]) == 2
    assert "has no setting '0.5/0.5'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "{tmp}/missing"], "data not found"),
        (["--model", "{tmp}"], "not a model folder"),
        (["--model", "{tmp}/missing"], "model not found: "),
        (["--taus", "0.5,0.9"], "stage thresholds"),
        (["--taus", "0.9,0.5,image"], "--taus wants"),
        (["--steps", "0"], "--steps"),
        (["--json", "{tmp}/no/such/out.json"], "folder for --json"),
        (["--clip", "{tmp}/missing"], "--clip model folder not found"),
        (["--size", "60"], "multiple of 16"),
    ],
)
def test_bad_input_is_a_one_line_error(argv, message, eval_model, synth_data, tmp_path):
    base = {"--data": synth_data, "--model": eval_model, "--json": tmp_path / "out.json", "--steps": 1}
    base.update(dict(zip(argv[::2], [a.format(tmp=tmp_path) for a in argv[1::2]], strict=True)))
    flat = [str(x) for kv in base.items() for x in kv]
    with pytest.raises(ValueError, match=message) as info:
        _run([*flat, "--limit", "1", "--quiet"])
    assert "\n" not in str(info.value)


def test_squeeze_cli_reports_errors_in_one_line(tmp_path, capsys):
    """Through ``squeeze``'s own entry point: a broken CLI fails this test (it used to skip on any exception)."""
    from squeeze_studio.cli import main

    assert main(["eval", "--data", str(tmp_path / "missing"), "--model", str(tmp_path), "--json", "o.json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: not a model folder (no model_index.json): {tmp_path}"  # the model is checked first


def test_cli_module_does_not_import_torch():
    code = "import sys, squeeze_studio.eval.cli; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_figure_without_truth_or_encoders_is_refused_up_front(eval_model, synth_data, tmp_path):
    line = json.loads((synth_data / "data.jsonl").read_text().splitlines()[0])
    record = {"instruction": line["instruction"], "input_images": [str(synth_data / p) for p in line["input_images"]],
              "output_image": str(synth_data / line["output_image"])}
    (tmp_path / "data.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(ValueError, match="--figure needs"):
        _run(["--data", tmp_path, "--model", eval_model, "--json", tmp_path / "o.json", "--figure", tmp_path / "f.png"])


def test_no_model_and_no_demo_model(synth_data, tmp_path, monkeypatch):
    monkeypatch.setenv("SQUEEZE_STUDIO_MODEL", str(tmp_path))  # not a model folder: no default model
    args = _parse(["--data", synth_data, "--json", tmp_path / "o.json"])
    with pytest.raises(ValueError, match="no built-in demo model is installed"):
        args.func(args)


def test_write_default_stores_the_best_measured_setting_with_where_it_came_from(eval_model, synth_data, tmp_path):
    import shutil

    from squeeze_studio.hub.resolve import resolve_model

    model = shutil.copytree(eval_model, tmp_path / "model")
    report_path = tmp_path / "r.json"
    rc, _ = _run(["--data", synth_data, "--model", model, "--json", report_path, "--limit", "2", "--quiet",
                  "--steps", "2", *SETTINGS, "--write-default", "--default-metric", "subject_psnr"])
    assert rc == 0
    report = _strict_json(report_path)
    scores = {s["name"]: report["results"][s["name"]]["synth"]["subject_psnr"] for s in report["settings"]}
    best = next(s for s in report["settings"] if scores[s["name"]] == max(scores.values()))
    stored = resolve_model(model).stage_defaults
    assert (stored.tau1, stored.tau2) == (best["tau1"], best["tau2"])
    assert "best subject_psnr" in stored.origin and "2 examples" in stored.origin


def test_write_default_refuses_a_stock_base(tiny_stock_dir, synth_data, tmp_path):
    with pytest.raises(ValueError, match="never written to"):
        _run(["--data", synth_data, "--model", tiny_stock_dir, "--json", tmp_path / "r.json", "--write-default"])

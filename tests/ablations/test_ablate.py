"""``squeeze ablate`` end to end on a miniature budget: every variant trains, is scored and lands in the
document; a rerun resumes from what is there instead of training again."""
import json

import pytest

from squeeze_studio.ablations.variants import VARIANTS
from squeeze_studio.cli import main


@pytest.mark.slow  # several minutes on a 2-core CPU: `pytest -m slow` and .ci/run run it
def test_ablate_smoke_writes_every_table_and_resumes(tmp_path, capsys):
    out, work = tmp_path / "docs", tmp_path / "work"
    assert main(["ablate", "--smoke", "--report-only", "--out", str(out), "--work", str(work)]) == 0
    assert "**Not run yet:** DLA, two-stage" in (out / "ablations.md").read_text()  # nothing trained yet
    assert not (work / "variants").exists()
    # one process's share (--only), then the rest resumes in the same work folder
    assert main(["ablate", "--smoke", "--quiet", "--only", "dla", "--threads", "1", "--out", str(out),
                 "--work", str(work)]) == 0
    assert sorted(p.name for p in (work / "variants").iterdir()) == ["dla", "dla@1"]
    partial = (out / "ablations.md").read_text()
    assert "**Not run yet:** DLA, two-stage, copy-rich" in partial and "1 CPU thread per run" in partial
    assert main(["ablate", "--smoke", "--quiet", "--out", str(out), "--work", str(work)]) == 0
    document = (out / "ablations.md").read_text()
    for heading in ("## 1. Connector", "## 2. Training schedule", "## 3. Stage thresholds", "## 4. Baselines",
                    "## 5. Copy-paste, natural and induced", "## 6. One step beyond the paper",
                    "## 7. Stage 0b"):
        assert heading in document
    for variant in VARIANTS:
        assert variant.label in document
        result = json.loads((work / "eval" / f"{variant.name}.json").read_text())
        assert result["reports"]["2.5"]["counts"]["examples"] == 3
        assert (out / "ablations" / f"grid-{variant.name}.png").is_file()
    assert "not run yet" not in document
    assert (out / "ablations" / "tradeoff-cfg2.5.png").is_file() and (out / "ablations" / "tradeoff-cfg4.png").is_file()
    assert "| 1/1 (VAE only) | 4 |" in document  # the VAE-only setting at the second guidance
    smooth = json.loads((work / "eval" / "smooth.json").read_text())["report"]["results"]
    assert {"0.95/0.85", "0.95/0.85 ramp"} <= set(smooth)
    induced = json.loads((work / "eval" / "induced.json").read_text())["report"]["results"]
    assert {"1/0", "0.95/0.85", "0.85/0.7"} <= set(induced)
    assert "| caption |" in document  # stage 0b's answer accuracy, random against pre-trained
    first_run = (work / "eval" / "dla.json").stat().st_mtime_ns

    capsys.readouterr()
    assert main(["ablate", "--smoke", "--quiet", "--out", str(out), "--work", str(work)]) == 0
    assert (work / "eval" / "dla.json").stat().st_mtime_ns == first_run  # resumed: nothing recomputed
    assert '"stage"' not in capsys.readouterr().out  # no training step logged


def test_ablate_reports_a_missing_output_folder_in_one_line(tmp_path, capsys):
    assert main(["ablate", "--smoke", "--out", str(tmp_path / "no" / "docs"), "--work", str(tmp_path / "w")]) == 2
    assert "folder for --out not found" in capsys.readouterr().err


def test_ablate_refuses_an_unknown_variant_in_one_line(tmp_path, capsys):
    assert main(["ablate", "--smoke", "--only", "dla,nope", "--out", str(tmp_path), "--work", str(tmp_path / "w")]) == 2
    assert "unknown variant nope for --only; the variants: dla, copy_rich" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def fake_run(subject_psnr: list[float]) -> dict:
    """A run's evaluation as ``Ablation.evaluate`` writes it, reduced to what a comparison reads."""
    records = [{"outputs": {"0.95/0.85": {"subject_psnr": v, "adherence": {"position": 0.5}}}} for v in subject_psnr]
    return {"reports": {"2.5": {"examples": records}}}


def test_a_comparison_pairs_runs_of_the_same_training_seed():
    from squeeze_studio.ablations.document import _compare

    low, high = [8.0 + 0.01 * i for i in range(40)], [9.0 + 0.01 * i for i in range(40)]
    paper = (0.7, 0.8, 0.3)
    results = {"dla@1": fake_run(high), "last_layer": fake_run(low)}  # no common seed yet
    assert _compare(results, "dla", "last_layer", paper, paper, "DLA", "last layer") == \
        "DLA against last layer: not run yet."
    results["last_layer@1"] = fake_run(high)  # seed 1 of both: the same numbers, so no difference
    sentence = _compare(results, "dla", "last_layer", paper, paper, "DLA", "last layer")
    assert sentence.startswith("DLA against last layer (1 seed): subject PSNR +0.00 dB")
    results["dla"] = fake_run(high)  # seed 0 now too: +1 dB against last_layer's seed 0
    sentence = _compare(results, "dla", "last_layer", paper, paper, "DLA", "last layer")
    assert sentence.startswith("DLA against last layer (2 seeds): subject PSNR +1.00 dB [+1.00, +1.00]; +0.00 dB")
    assert "no difference measured (the seeds disagree)" in sentence

"""`synth make` / `synth sheet` through argparse, `main`, and `python -m squeeze_studio.synth`."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from squeeze_studio.synth.cli import add_synth_parser, main

REPO = Path(__file__).resolve().parents[2]


def _parser():
    parser = argparse.ArgumentParser(prog="squeeze")
    add_synth_parser(parser.add_subparsers(dest="command"))
    return parser


def test_synth_make_writes_images_and_jsonl(tmp_path, capsys):
    out = tmp_path / "data"
    args = _parser().parse_args(
        ["synth", "make", "--count", "3", "--seed", "4", "--split", "test", "--out", str(out), "--size", "32"]
    )
    assert args.func(args) == 0
    lines = (out / "data.jsonl").read_text().splitlines()
    assert len(lines) == 3
    for line in lines:
        record = json.loads(line)
        assert set(record) >= {"instruction", "input_images", "output_image", "output_mask", "meta"}
        for rel in [*record["input_images"], record["output_image"], record["output_mask"]]:
            assert Image.open(out / rel).size == (32, 32)
        assert record["meta"]["split"] == "test"
    assert json.loads((out / "info.json").read_text())["count"] == 3
    assert "wrote 3 examples" in capsys.readouterr().out


def test_main_runs_make_and_sheet_and_reports_bad_output(tmp_path, capsys):
    assert main(["make", "--count", "1", "--out", str(tmp_path / "d"), "--size", "32", "--quiet",
                 "--identity-pairs", "1"]) == 0
    record = json.loads((tmp_path / "d" / "data.jsonl").read_text())
    assert record["meta"]["variant"] == "identity"
    assert main(["sheet", "--out", str(tmp_path / "sheet.png"), "--rows", "2", "--size", "32"]) == 0
    assert Image.open(tmp_path / "sheet.png").size[1] > 64
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["make", "--count", "1", "--out", str(blocker), "--quiet"]) == 2
    assert "synth make:" in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "squeeze_studio.synth", "make", "--count", "1", "--out", str(tmp_path),
         "--size", "32", "--quiet", "--copy-variant"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "data.jsonl").read_text())["meta"]["variant"] == "copy"

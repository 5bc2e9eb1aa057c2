"""``squeeze generate --batch FILE.jsonl --out DIR``: one PNG per line, the lines checked before the model loads."""
import json
from pathlib import Path

import pytest

from squeeze_studio.cli import main
from squeeze_studio.recipe import read_recipe


def batch(tmp_path, lines, *extra) -> int:
    file = tmp_path / "jobs.jsonl"
    file.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return main(["generate", "--batch", str(file), "--out", str(tmp_path / "out"), "--steps", "2", *extra])


@pytest.mark.slow  # 15 s on a 2-core CPU: the tiny model loads and runs twice
def test_a_batch_writes_one_png_per_line_and_a_rerun_skips_them(tmp_path, tiny_model_dir, reference_files,
                                                                capsys):
    local = tmp_path / "ref.png"
    local.write_bytes(Path(reference_files[0]).read_bytes())
    lines = [{"instruction": "a toy on a beach", "references": reference_files, "seed": 3},
             "",
             {"instruction": "the toy in snow", "references": ["ref.png"], "tau1": 0.9, "tau2": 0.5}]
    assert batch(tmp_path, lines, "--model", str(tiny_model_dir), "--seed", "11") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0001.png", "0002.png"]
    first, second = read_recipe(tmp_path / "out" / "0001.png"), read_recipe(tmp_path / "out" / "0002.png")
    assert (first.instruction, first.references, first.seed, first.num_inference_steps) == (
        "a toy on a beach", reference_files, 3, 2)
    assert (second.references, second.seed, second.tau1, second.tau2) == ([str(local)], 11, 0.9, 0.5)
    assert "[2/2] wrote" in capsys.readouterr().err

    assert batch(tmp_path, lines, "--model", str(tiny_model_dir), "--seed", "11") == 0
    assert "2 of 2 already written, skipped" in capsys.readouterr().err


def test_a_bad_line_is_one_error_line_before_anything_runs(tmp_path, reference_files, capsys):
    cases = {"line 2: unknown field 'sed'": [{"instruction": "a", "references": reference_files},
                                             {"instruction": "b", "references": reference_files, "sed": 4}],
             "line 1: not JSON": ["{instruction: a}"],
             "line 1: no references": [{"instruction": "a"}],
             "line 1: batch_count must be 1": [{"instruction": "a", "references": reference_files, "batch_count": 2}],
             "line 1: reference not found": [{"instruction": "a", "references": ["gone.png"]}]}
    for message, lines in cases.items():
        assert batch(tmp_path, lines) == 2, message
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {message}"), (message, err)
        assert not (tmp_path / "out").exists()


def test_generate_without_batch_still_needs_ref_and_prompt(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.strip() == "error: the following arguments are required: --ref, --prompt"

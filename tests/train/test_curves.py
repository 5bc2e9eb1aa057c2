"""``squeeze train curves``: loss curves drawn from a work folder's stage logs; a missing log is one line."""
import json

from squeeze_studio.cli import main


def _log(folder, losses):
    folder.mkdir(parents=True)
    records = [{"stage": folder.name, "step": 50 * (i + 1), "loss": loss} for i, loss in enumerate(losses)]
    (folder / "progress.json").write_text(json.dumps({"log": records}))


def test_curves_of_two_runs_are_drawn_from_their_logs(tmp_path, capsys):
    _log(tmp_path / "work" / "stage1", [2.0, 1.0, 0.5])
    _log(tmp_path / "work" / "stage2", [0.8, 0.6])
    _log(tmp_path / "work" / "stage2-mllm-only", [0.9, 0.7])
    out = tmp_path / "curves.png"
    work = tmp_path / "work"
    assert main(["train", "curves", "--run", f"v4={work}:stage1,stage2", "--run",
                 f"control={work}:stage1,stage2-mllm-only", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["train", "curves", "--run", f"x={tmp_path / 'nothing'}:stage1", "--out", str(out)]) == 2
    assert "no training log at" in capsys.readouterr().err
    assert main(["train", "curves", "--run", str(work), "--out", str(out)]) == 2
    assert "--run wants" in capsys.readouterr().err

"""``squeeze models list | download | verify | add | remove``: output, exit status, one-line errors."""
from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from fake_hub import FakeHub, add_to_cache, files_of

from squeeze_studio.cli import main
from squeeze_studio.hub import manager

QWEN = "Qwen/Qwen-Image-Edit-2509"
WEIGHTS = ("transformer/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors",
           "vae/diffusion_pytorch_model.safetensors")
REPO_ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(["models", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(err: str, text: str) -> None:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err == f"error: {text}\n"


def test_list_shows_each_model_with_where_size_status_and_kind(dirs, capsys, stock_model, tiny_model_dir):
    snapshot = add_to_cache(dirs["cache"], QWEN, stock_model)
    (snapshot / "scheduler" / "scheduler_config.json").unlink()
    manager.add_user_folder(tiny_model_dir)
    status, out, _ = run(capsys, "list")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "WHERE", "SIZE", "STATUS", "KIND"]
    demo = lines[1].split()
    assert demo[:4] == ["Built-in", "demo", "model", "demo"] and demo[5:] == ["MB", "complete", "squeeze"]
    assert lines[2].split()[:2] == [QWEN, "cache@main"]
    assert "missing scheduler/scheduler_config.json" in lines[2] and lines[2].endswith("stock")
    assert lines[3].split()[:2] == ["tiny-model", "folder"] and lines[3].split()[-2:] == ["complete", "squeeze"]
    assert "not installed: qwen-image-edit-2511 (Qwen/Qwen-Image-Edit-2511, ~57.7 GB)" in out


def test_verify_a_folder_a_cached_repo_and_a_broken_one(dirs, capsys, stock_copy):
    status, out, err = run(capsys, "verify", str(stock_copy))
    assert (status, err) == (0, "") and out.startswith(f"ok: {stock_copy.name} (stock, ")
    add_to_cache(dirs["cache"], QWEN, stock_copy)
    status, out, _ = run(capsys, "verify", QWEN)
    assert status == 0 and out.startswith(f"ok: {QWEN} (stock, ")
    (stock_copy / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    status, out, err = run(capsys, "verify", str(stock_copy))
    assert (status, out) == (2, "")
    assert_one_line_error(err, "missing transformer/diffusion_pytorch_model.safetensors")


def test_verify_something_that_is_not_there(dirs, capsys, tmp_path):
    status, _, err = run(capsys, "verify", "someone/not-cached")
    assert status == 2 and err.startswith("error: someone/not-cached is not in the Hugging Face cache")
    assert err.count("\n") == 1


def test_remove_asks_first(dirs, capsys, stock_model, monkeypatch):
    add_to_cache(dirs["cache"], QWEN, stock_model)
    repo = dirs["cache"] / "models--Qwen--Qwen-Image-Edit-2509"
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    status, out, _ = run(capsys, "remove", QWEN)
    assert status == 1 and "? [y/N] " in out and out.endswith("nothing removed\n") and repo.is_dir()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # no answer (end of input) is no
    assert run(capsys, "remove", QWEN)[0] == 1 and repo.is_dir()
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    status, out, _ = run(capsys, "remove", "qwen-image-edit-2509")
    assert status == 0 and "removed models--Qwen--Qwen-Image-Edit-2509: 1.7 MB freed" in out and not repo.exists()


def test_remove_with_yes_and_what_cannot_be_removed(dirs, capsys, stock_model, monkeypatch):
    add_to_cache(dirs["cache"], QWEN, stock_model)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert run(capsys, "remove", QWEN, "--yes")[0] == 0
    assert not (dirs["cache"] / "models--Qwen--Qwen-Image-Edit-2509").exists()
    status, _, err = run(capsys, "remove", QWEN, "--yes")
    assert status == 2 and err.startswith(f"error: {QWEN} is not in the Hugging Face cache") and err.count("\n") == 1
    status, _, err = run(capsys, "remove", "demo", "--yes")
    assert_one_line_error(err, "the demo model is built in: nothing to download or remove")


def test_add_verifies_first_and_remove_forgets_a_folder(dirs, capsys, stock_copy, tmp_path):
    broken = Path(shutil.copytree(stock_copy, tmp_path / "broken"))
    (broken / "vae" / "config.json").unlink()
    status, _, err = run(capsys, "add", str(broken))
    assert status == 2 and manager.user_folders() == []
    assert_one_line_error(err, "missing vae/config.json")
    assert run(capsys, "add", str(stock_copy))[0] == 0
    assert manager.user_folders() == [stock_copy.resolve()]
    status, out, _ = run(capsys, "remove", str(stock_copy))
    assert status == 0 and out.startswith("forgot ") and manager.user_folders() == []
    assert (stock_copy / "model_index.json").is_file()


def test_download_prints_the_space_needed_then_fetches(dirs, online, capsys, stock_model):
    online(FakeHub(QWEN, stock_model))
    status, _, err = run(capsys, "download", "qwen-image-edit-2509", "--quiet")
    assert status == 0
    lines = err.splitlines()
    assert lines[0].startswith(f"{QWEN}@main: 1.7 MB to download, ") and lines[0].endswith(f" free on {dirs['cache']}")
    assert lines[-1].startswith(f"downloaded {QWEN} to ")
    assert files_of(Path(lines[-1].split(" to ", 1)[1])) == files_of(stock_model)


def test_download_refusals_are_one_line(dirs, online, capsys, stock_model, monkeypatch):
    online(FakeHub(QWEN, stock_model))
    status, _, err = run(capsys, "download", "qwen")
    assert status == 2 and err.startswith("error: unknown model 'qwen'") and err.count("\n") == 1
    monkeypatch.setattr(manager, "free_space", lambda path: 10**6)
    status, _, err = run(capsys, "download", QWEN)
    assert_one_line_error(err, f"needs 1.7 MB, 1.0 MB free on {dirs['cache']}")


def test_ctrl_c_stops_a_download_with_status_130_and_nothing_half_written(dirs, stock_model, tmp_path):
    with FakeHub(QWEN, stock_model, hold=WEIGHTS) as hub:
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "SQUEEZE_STUDIO_HOME": str(dirs["home"]),
               "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(dirs["cache"])}
        # As from a terminal: Python's Ctrl+C handler in place even when this test runs in the background, whose
        # children inherit SIGINT ignored (and Python then installs no handler for it).
        command = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                   "sys.argv[0] = 'squeeze'; runpy.run_module('squeeze_studio.cli', run_name='__main__')")
        proc = subprocess.Popen([sys.executable, "-c", command, "models", "download", QWEN],
                                cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        said: list[str] = []  # stderr as it comes (the progress bar rewrites one line, so read characters)
        reader = threading.Thread(target=lambda: said.extend(iter(lambda: proc.stderr.read(1), "")), daemon=True)
        try:
            assert hub.started.wait(60), "the download never started"
            reader.start()
            proc.send_signal(signal.SIGINT)
            # The held transfers go on only once the child says it took the signal: a loaded machine can take
            # longer than any fixed wait to run its handler, and a transfer released earlier would just finish.
            deadline = time.monotonic() + 60
            while "Ctrl+C: stopping the download" not in "".join(said) and time.monotonic() < deadline:
                time.sleep(0.05)
            hub.release.set()
            proc.wait(timeout=60)
            reader.join(10)
            err = "".join(said)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err
    assert "Ctrl+C: stopping the download" in err
    assert "cancelled: complete files stay in the cache, nothing half-written" in err and "Traceback" not in err
    snapshot = next((dirs["cache"] / "models--Qwen--Qwen-Image-Edit-2509" / "snapshots").iterdir())
    landed, expected = files_of(snapshot), files_of(stock_model)
    assert not set(WEIGHTS) & set(landed)
    assert all(expected[name] == data for name, data in landed.items())

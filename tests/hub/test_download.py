"""Downloads through a loopback Hub (tests/hub/fake_hub.py) serving the tiny stock model: whole, refused for
lack of disk, cut mid-file and resumed, cancelled and restarted. Never the internet."""
from __future__ import annotations

import threading
import time

import pytest
from fake_hub import FakeHub, files_of

from squeeze_studio.hub import manager
from squeeze_studio.hub.verify import check_files, verify_model

QWEN = "Qwen/Qwen-Image-Edit-2509"
VAE = "vae/diffusion_pytorch_model.safetensors"
WEIGHTS = ("transformer/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", VAE)


def snapshot_files(dirs) -> dict[str, bytes]:
    """Every file the cache's snapshots hold for the repo (what a load would see)."""
    snapshots = dirs["cache"] / "models--Qwen--Qwen-Image-Edit-2509" / "snapshots"
    folders = list(snapshots.glob("*")) if snapshots.is_dir() else []
    assert len(folders) <= 1
    return files_of(folders[0]) if folders else {}


def test_download_fetches_the_repo_with_progress(dirs, online, stock_model):
    hub = online(FakeHub(QWEN, stock_model))
    expected = files_of(stock_model)
    needed = manager.download_size(QWEN)
    assert needed == sum(len(data) for data in expected.values())
    calls = []
    path = manager.download(QWEN, progress=lambda done, total: calls.append((done, total)))
    assert files_of(path) == expected
    assert path.parent.name == "snapshots" and path.name == hub.commit
    assert calls[-1] == (needed, needed) and len(calls) > 3  # several steps, not one jump at the end
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert manager.download_size(QWEN) == 0  # everything is in the cache now
    assert verify_model(path) == []
    entry = manager.list_installed()[1]
    assert (entry.repo_id, entry.complete, entry.kind, entry.revision) == (QWEN, True, "stock", "main")
    # The Hub's listing is kept with the cache: a file no loader needs is still missed once it is gone.
    (path / "processor" / "chat_template.jinja").unlink()
    assert check_files(path) == ["missing processor/chat_template.jinja"]


def test_download_refuses_in_one_line_when_the_disk_is_too_small(dirs, online, stock_model, monkeypatch):
    hub = online(FakeHub(QWEN, stock_model))
    monkeypatch.setattr(manager, "free_space", lambda path: 1000)
    with pytest.raises(ValueError) as raised:
        manager.download(QWEN)
    assert str(raised.value) == f"needs 1.7 MB, 1.0 kB free on {dirs['cache']}"
    assert not [r for r in hub.requests if r.startswith("GET ") and "/resolve/" in r]  # no file fetched
    assert snapshot_files(dirs) == {}


def test_a_transfer_cut_mid_file_resumes_where_it_stopped(dirs, online, stock_model):
    hub = online(FakeHub(QWEN, stock_model, cut={VAE: 200_000}))
    path = manager.download(QWEN)
    assert files_of(path) == files_of(stock_model)
    first, second = hub.gets(VAE)
    assert "Range" not in first
    start = int(second.split("Range=bytes=")[1].split("-")[0])
    assert 0 < start <= 200_000  # asked only for the rest


def test_cancel_leaves_only_complete_files_and_a_rerun_fetches_the_rest(dirs, online, stock_model):
    hub = online(FakeHub(QWEN, stock_model, hold=WEIGHTS))
    expected = files_of(stock_model)
    cancel = threading.Event()

    def cancel_once_the_small_files_landed() -> None:
        # The weights are held mid-transfer; the small files finish. Then Cancel, and let the weights go on:
        # each stops at its next chunk.
        while len(snapshot_files(dirs)) < len(expected) - len(WEIGHTS) and not hub.release.is_set():
            time.sleep(0.01)
        cancel.set()
        hub.release.set()

    threading.Thread(target=cancel_once_the_small_files_landed, daemon=True).start()
    with pytest.raises(manager.DownloadCancelled):
        manager.download(QWEN, should_cancel=cancel.is_set)
    landed = snapshot_files(dirs)
    assert set(landed) == set(expected) - set(WEIGHTS)  # the held files stopped mid-transfer: not there at all
    assert all(expected[name] == data for name, data in landed.items())  # what is there is whole
    blobs = dirs["cache"] / "models--Qwen--Qwen-Image-Edit-2509" / "blobs"
    assert not list(blobs.glob("*.incomplete"))
    entry = manager.list_installed()[1]
    assert entry.repo_id == QWEN and not entry.complete and entry.problem.startswith("missing ")

    hub.hold, hub.requests[:] = set(), []
    path = manager.download(QWEN)
    assert files_of(path) == expected
    assert not any(hub.gets(name) for name in landed)  # complete files are not fetched again
    assert all(hub.gets(name) for name in WEIGHTS)
    assert manager.list_installed()[1].complete


def test_hub_errors_are_one_line(dirs, online, stock_model):
    hub = online(FakeHub(QWEN, stock_model))
    with pytest.raises(ValueError, match=rf"^someone/missing not found on {hub.url}$"):
        manager.download_size("someone/missing")
    with pytest.raises(ValueError, match=rf"^revision v9 of {QWEN} not found on {hub.url}$"):
        manager.download(QWEN, revision="v9")


def test_offline_mode_refuses_before_touching_the_network(dirs, online, stock_model, monkeypatch):
    from huggingface_hub import constants

    hub = online(FakeHub(QWEN, stock_model))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match=r"^offline mode is on \(HF_HUB_OFFLINE=1\): unset it to download$"):
        manager.download(QWEN)
    assert hub.requests == []


# --- Xet transfers ----------------------------------------------------------------------------------------------
# The loopback Hub sends no X-Xet-Hash header, so every test above takes huggingface_hub's plain HTTP path. Large
# files on the real Hub are Xet-stored and go through hf_xet (a Rust client talking to a Xet storage server that
# cannot be faked here): their cancel and resume are untested (docs/RELIABILITY.md). What is checked is the one
# piece of it this project owns: a stop aborts huggingface_hub's Xet session, and says so when it cannot.

def test_a_stop_aborts_the_xet_transfers_through_huggingface_hubs_session(monkeypatch):
    from huggingface_hub.utils import _xet  # private, and the only way to abort Xet: it must be there

    aborted = []
    monkeypatch.setattr(_xet, "abort_xet_session", lambda: aborted.append(1))
    monkeypatch.setattr(manager, "xet_in_use", lambda: True)
    stop = threading.Event()
    manager._stop_transfers(stop)
    assert stop.is_set() and aborted == [1]


def test_a_xet_abort_that_cannot_be_imported_is_a_warning_not_silence(monkeypatch, caplog):
    import logging
    import sys

    monkeypatch.setitem(sys.modules, "huggingface_hub.utils._xet", None)  # a huggingface_hub that moved it
    monkeypatch.setattr(manager, "xet_in_use", lambda: True)
    stop = threading.Event()
    with caplog.at_level(logging.WARNING, logger=manager.__name__):
        manager._stop_transfers(stop)
    assert stop.is_set()  # the HTTP transfers still stop
    [record] = [r for r in caplog.records if r.name == manager.__name__]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("cannot abort the Xet transfers with this huggingface_hub (")


def test_xet_is_in_use_unless_disabled(monkeypatch):
    from huggingface_hub import constants

    assert manager.xet_in_use()  # hf_xet comes with huggingface_hub here, so real large files take the Xet path
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    assert not manager.xet_in_use()

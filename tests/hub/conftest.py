"""Fixtures for the model manager: tiny model folders, a private user data folder and Hugging Face cache, and a
loopback Hub. Nothing here reaches the internet or the real caches."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def stock_model(tiny_stock_dir) -> Path:
    """The tiny stock QwenImageEditPlusPipeline folder (tests/conftest.py builds it once), laid out like
    Qwen/Qwen-Image-Edit-2509: read only; break a ``stock_copy``."""
    return tiny_stock_dir


@pytest.fixture
def stock_copy(stock_model, tmp_path) -> Path:
    """A copy of the stock model a test may break."""
    return Path(shutil.copytree(stock_model, tmp_path / "stock"))


@pytest.fixture
def squeeze_copy(tiny_model_dir, tmp_path) -> Path:
    """A copy of the tiny SqueezePipeline model a test may break."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "squeeze"))


@pytest.fixture
def dirs(tmp_path, monkeypatch) -> dict[str, Path]:
    """A private user data folder and Hugging Face cache for one test, and offline mode as tests/conftest.py set it."""
    home, cache = tmp_path / "home", tmp_path / "hf" / "hub"
    monkeypatch.setenv("SQUEEZE_STUDIO_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("SQUEEZE_STUDIO_MODEL", raising=False)
    return {"home": home, "cache": cache}


@pytest.fixture
def online(dirs, monkeypatch):
    """Start a loopback Hub for a test and point huggingface_hub at it (never the internet):
    ``hub = online(FakeHub(repo_id, folder))``. Reads fewer bytes per progress step, so transfers are seen mid-file."""
    from huggingface_hub import constants

    started = []

    def start(hub):
        hub.__enter__()
        started.append(hub)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        template = hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
        return hub

    yield start
    for hub in started:
        hub.__exit__(None, None, None)

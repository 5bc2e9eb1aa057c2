"""Fixtures for the window tests: offscreen Qt, no network, a private data folder per test."""
import os

# Before any QApplication exists (pytest-qt creates it lazily in the ``qapp`` fixture).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from .fake_engine import FakeEngineFactory  # noqa: E402


@pytest.fixture
def studio_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "studio-home"
    monkeypatch.setenv("SQUEEZE_STUDIO_HOME", str(home))
    return home


@pytest.fixture
def fake_factory() -> FakeEngineFactory:
    return FakeEngineFactory()


@pytest.fixture
def window_maker(qtbot):
    """Build main windows in the data folder the test set up; every one is closed (worker joined) at teardown."""
    from squeeze_studio.app.ui.main_window import MainWindow

    windows = []

    def make(engine_factory=None):
        window = MainWindow(engine_factory=engine_factory or FakeEngineFactory())
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        assert window.studio.client.thread.isFinished()


@pytest.fixture
def make_window(window_maker, studio_home):
    """``window_maker`` in a private data folder."""
    return window_maker


@pytest.fixture
def images(tmp_path) -> list[str]:
    """Three small reference images in a folder of their own, plus a text file beside them."""
    folder = tmp_path / "refs"
    folder.mkdir()
    paths = []
    for index, colour in enumerate(["red", "green", "blue"]):
        path = folder / f"ref{index}.png"
        Image.new("RGB", (48, 40), colour).save(path)
        paths.append(str(path))
    (tmp_path / "notes.txt").write_text("not an image")
    return paths


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random-weight SqueezePipeline folder, built once (seconds)."""
    from squeeze_studio.testing.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "tiny")

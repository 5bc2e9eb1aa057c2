"""Shared, offline fixtures: tiny real architectures built from configs in seconds."""
import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
# Preview maps and other per-user caches go to a temp folder, never the real user's data folder.
os.environ.setdefault("SQUEEZE_STUDIO_HOME", tempfile.mkdtemp(prefix="squeeze-home-"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402


def random_image(seed: int, size=(64, 64)) -> Image.Image:
    pixels = np.random.RandomState(seed).randint(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture(scope="session")
def references():
    return [random_image(1), random_image(2, size=(48, 80))]


@pytest.fixture(scope="session")
def reference_files(tmp_path_factory, references):
    folder = tmp_path_factory.mktemp("refs")
    paths = []
    for i, image in enumerate(references):
        path = folder / f"ref{i}.png"
        image.save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="session")
def tiny_pipeline():
    from squeeze_studio.testing.tiny import build_tiny_pipeline

    return build_tiny_pipeline(mode="dla")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from squeeze_studio.testing.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny-model")


@pytest.fixture(scope="session")
def tiny_stock_dir(tmp_path_factory):
    """A tiny stock diffusers QwenImageEditPlusPipeline folder, laid out like a Qwen-Image-Edit-2509 snapshot."""
    from squeeze_studio.testing.tiny import build_tiny_stock_model

    return build_tiny_stock_model(tmp_path_factory.mktemp("stock") / "Qwen-Image-Edit-2509")


STOCK_REPO = "Qwen/Qwen-Image-Edit-2509"
STOCK_REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def fake_hf_cache(tmp_path, monkeypatch, tiny_stock_dir):
    """``HF_HOME`` in a temp dir whose hub cache holds the tiny stock model as ``Qwen/Qwen-Image-Edit-2509``,
    in huggingface_hub's cache layout (snapshots/<commit>/, refs/main). Returns the snapshot folder."""
    import shutil

    home = tmp_path / "hf-home"
    repo = home / "hub" / ("models--" + STOCK_REPO.replace("/", "--"))
    snapshot = repo / "snapshots" / STOCK_REVISION
    shutil.copytree(tiny_stock_dir, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(STOCK_REVISION)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("SQUEEZE_STUDIO_HOME", str(tmp_path / "squeeze-home"))
    return snapshot


@pytest.fixture
def addon_reads(monkeypatch):
    """Every open of an add-on's squeeze_addon.json for reading from now on (pathlib's and open() both go through
    io.open)."""
    import builtins
    import io
    from pathlib import Path

    reads, real_open = [], io.open

    def counting_open(file, mode="r", *args, **kwargs):
        if Path(str(file)).name == "squeeze_addon.json" and not set(mode) & set("wax+"):
            reads.append(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", counting_open)
    monkeypatch.setattr(builtins, "open", counting_open)
    return reads

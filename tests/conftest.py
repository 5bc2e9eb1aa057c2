"""Shared, offline fixtures: tiny real architectures built from configs in seconds."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"
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

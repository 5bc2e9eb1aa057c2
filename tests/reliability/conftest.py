"""Fixtures for the reliability tests (helpers.py has the shared functions). Each case asserts the contract:
exit status 2, exactly one ``error: ...`` line on stderr, no traceback, and nothing made is lost."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from squeeze_studio.cli import main


@pytest.fixture
def squeeze(capsys):
    """``squeeze(argv) -> (status, stderr)``, run in this process."""
    def run(argv):
        status = main([str(a) for a in argv])
        return status, capsys.readouterr().err
    return run


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path) -> Path:
    """A copy of the tiny Squeeze model that a test may break."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))

"""Helpers for the reliability tests: run ``squeeze`` as the installed command, read its one error line."""
from __future__ import annotations

import subprocess
import sys


def one_error_line(stderr: str) -> str:
    """The single ``error: ...`` line of a refused run (progress bars and the memory plan are not errors)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr and errors[0] == lines[-1], stderr
    return errors[0]


def generate_argv(model, out, refs, prompt="a toy on a beach", *extra) -> list[str]:
    argv = ["generate", "--model", str(model), "--prompt", prompt, "--out", str(out), "--steps", "2"]
    for ref in refs:
        argv += ["--ref", str(ref)]
    return argv + list(extra)


def squeeze_command(argv, timeout=300) -> subprocess.CompletedProcess:
    """The installed command in a fresh process: what a user sees, tracebacks included."""
    return subprocess.run([sys.executable, "-m", "squeeze_studio.cli", *map(str, argv)], capture_output=True,
                          text=True, timeout=timeout)

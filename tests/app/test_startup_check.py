"""The check before Qt starts: a missing system library or no display is one message and exit 2, never Qt's abort."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from squeeze_studio.app import startup_check
from squeeze_studio.app.startup_check import PlatformProblem, chosen_platforms, describe

ROOT = Path(__file__).resolve().parents[2]
FAKE = b"libsqueezefk.so.0"  # as long as the name it replaces, so the ELF string table keeps its layout
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland platform plugins")


def run_app(env_changes: dict[str, str | None], *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY",
                                                             "XDG_SESSION_TYPE")}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "squeeze_studio.app.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def broken_xcb_plugin(folder: Path) -> Path:
    """A copy of PySide6's xcb plugin that needs a library no system has (one DT_NEEDED name renamed)."""
    plugin = startup_check.find_plugin("xcb", {})
    if plugin is None:
        pytest.skip("PySide6 has no xcb plugin here")
    data = plugin.read_bytes()
    real = b"libxcb-shape.so.0"
    assert len(real) == len(FAKE) and data.count(real) == 1
    target = folder / "platforms" / "libqxcb.so"
    target.parent.mkdir(parents=True)
    target.write_bytes(data.replace(real, FAKE))
    return target.parent


@linux_only
def test_a_missing_library_is_named_in_one_message_with_exit_2_not_a_qt_abort(tmp_path):
    plugins = broken_xcb_plugin(tmp_path)
    result = run_app({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":99", "QT_QPA_PLATFORM_PLUGIN_PATH": str(plugins),
                      "SQUEEZE_STUDIO_HOME": str(tmp_path / "home")})
    assert result.returncode == 2, result.stderr
    assert "libsqueezefk.so.0" in result.stderr
    assert "cannot open a window: Qt's xcb platform plugin needs system libraries that are missing" in result.stderr
    assert "apt-file search libsqueezefk.so.0" in result.stderr  # an unknown library: how to find its package
    assert "could not load the Qt platform plugin" not in result.stderr  # Qt never got to abort
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 8


@linux_only
def test_no_display_at_all_is_said_as_such(tmp_path):
    result = run_app({"SQUEEZE_STUDIO_HOME": str(tmp_path / "home")})
    assert result.returncode == 2
    assert result.stderr.startswith("squeeze-studio: no display: neither DISPLAY nor WAYLAND_DISPLAY is set")
    assert "--self-test" in result.stderr


def test_known_libraries_get_debian_and_fedora_install_lines():
    message = describe([PlatformProblem("xcb", missing=["libxcb-icccm.so.4", "libxcb-keysyms.so.1",
                                                        "libxcb-cursor.so.0"])])
    assert "missing: libxcb-icccm.so.4, libxcb-keysyms.so.1, libxcb-cursor.so.0" in message
    assert "Debian/Ubuntu:  sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in message
    assert "Fedora:         sudo dnf install xcb-util-cursor xcb-util-keysyms xcb-util-wm" in message


def test_a_display_problem_on_one_platform_does_not_hide_a_library_problem_on_another():
    message = describe([PlatformProblem("wayland", no_display=True),
                        PlatformProblem("xcb", missing=["libxkbcommon-x11.so.0"])])
    assert "libxkbcommon-x11-0" in message and "no display" not in message


def test_the_platforms_qt_will_try():
    assert chosen_platforms(["-platform", "offscreen"], {"QT_QPA_PLATFORM": "xcb"}) == ["offscreen"]
    assert chosen_platforms([], {"QT_QPA_PLATFORM": "wayland;xcb"}) == ["wayland", "xcb"]
    assert chosen_platforms([], {"WAYLAND_DISPLAY": "wayland-0"}) == ["wayland", "xcb"]
    assert chosen_platforms([], {"DISPLAY": ":0"}) == ["xcb"]


def test_platforms_without_a_display_pass(monkeypatch):
    monkeypatch.setattr(startup_check.sys, "platform", "linux")
    assert startup_check.check([], {"QT_QPA_PLATFORM": "offscreen"}) is None
    monkeypatch.setattr(startup_check.sys, "platform", "darwin")
    assert startup_check.check([], {}) is None  # macOS and Windows plugins need nothing from the system

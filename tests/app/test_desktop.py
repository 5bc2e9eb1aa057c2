"""Desktop integration: the menu entry and icons in a temporary XDG home, the icon, one window per user."""
from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from squeeze_studio.app import desktop
from squeeze_studio.app.single_instance import SingleInstance, server_name

ROOT = Path(__file__).resolve().parents[2]


def run_app(*args: str, data_home: Path, **env_changes: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(data_home), **env_changes}
    return subprocess.run([sys.executable, "-m", "squeeze_studio.app.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_icon_ships_as_svg_and_every_hicolor_png_size():
    files = desktop.icon_files()
    assert set(files) == {0, *desktop.ICON_SIZES}
    for size in desktop.ICON_SIZES:
        image = Image.open(files[size])
        assert image.size == (size, size) and image.mode == "RGBA"
    assert files[0].read_text().lstrip().startswith("<?xml")


def test_install_and_uninstall_the_desktop_entry_in_a_temporary_xdg_home(tmp_path):
    xdg = tmp_path / "share"
    result = run_app("--install-desktop-entry", data_home=xdg)
    assert result.returncode == 0, result.stderr
    entry = xdg / "applications" / "squeeze-studio.desktop"
    assert result.stdout.strip() == f"installed {entry} and 10 icons"

    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(entry)
    section = parser["Desktop Entry"]
    assert section["Name"] == "Squeeze Studio" and section["Type"] == "Application"
    assert section["MimeType"] == "image/png;image/jpeg;image/webp;"
    assert section["Exec"].endswith(" %F")
    assert section["Icon"] == "squeeze-studio" and section["StartupWMClass"] == "squeeze-studio"
    # The icon resolves in the hicolor theme: a PNG per size and the scalable SVG, under the entry's Icon name.
    for size in desktop.ICON_SIZES:
        icon = xdg / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "squeeze-studio.png"
        assert Image.open(icon).size == (size, size)
    assert (xdg / "icons" / "hicolor" / "scalable" / "apps" / "squeeze-studio.svg").is_file()
    validate = shutil.which("desktop-file-validate")
    if validate:
        check = subprocess.run([validate, str(entry)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr

    result = run_app("--uninstall-desktop-entry", data_home=xdg)
    assert result.returncode == 0 and result.stdout.strip() == "removed 11 files (menu entry and icons)"
    assert [p for p in xdg.rglob("*") if not p.is_dir()] == []  # nothing left behind
    assert run_app("--uninstall-desktop-entry", data_home=xdg).stdout.strip() == "nothing to remove"


def test_exec_lines_quote_what_the_spec_reserves():
    assert desktop.desktop_entry(["/opt/squeeze/bin/squeeze-studio"]).count("Exec=/opt/squeeze/bin/squeeze-studio %F")
    entry = desktop.desktop_entry(["/home/a b/.venv/bin/python", "-m", "squeeze_studio.app.main"])
    assert 'Exec="/home/a b/.venv/bin/python" -m squeeze_studio.app.main %F' in entry
    assert "TryExec" not in entry
    assert desktop.quote_exec_argument('/x/"q"$') == '"/x/\\\\"q\\\\"\\\\$"'
    assert desktop.quote_exec_argument("/x/100%") == "/x/100%%"


def test_a_second_start_hands_its_files_to_the_open_window(make_window, qtbot, studio_home, images):
    """The open window listens; ``squeeze-studio FILE`` started again exits at once and the file becomes a
    reference in the open window (the real entry point for the second start, in a process of its own)."""
    window = make_window()
    window.studio.subjects.add_images(images[:1])
    instance = SingleInstance(server_name(studio_home))
    assert instance.listen()
    instance.files_received.connect(window.open_files)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    second = subprocess.Popen([sys.executable, "-m", "squeeze_studio.app.main", images[2]], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        qtbot.waitUntil(lambda: second.poll() is not None, timeout=60_000)  # Qt's loop runs meanwhile
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0, second.stderr.read()
    subjects = window.studio.subjects
    qtbot.waitUntil(lambda: subjects.references() == [images[2]], timeout=10_000)
    assert [s.name for s in subjects.subjects] == ["Subject 1", "Opened files"]
    assert subjects.subjects[0].images == images[:1]  # the user's subject is untouched
    instance.close()


def test_a_socket_left_by_a_crashed_instance_does_not_block_the_next_start(tmp_path, qapp):
    name = str(tmp_path / "stale-socket") if os.name == "posix" else "squeeze-studio-test-stale"
    if os.name == "posix":
        import socket

        stale = socket.socket(socket.AF_UNIX)
        stale.bind(name)  # a socket file nobody listens on, as a crash leaves it
        stale.close()
    instance = SingleInstance(name)
    assert not instance.hand_over(["x.png"])
    assert instance.listen()
    instance.close()


@pytest.mark.parametrize("size", [16, 512])
def test_the_window_uses_the_icon(qapp, size):
    from squeeze_studio.app.main import application_icon, configure_application

    configure_application(qapp)
    assert qapp.desktopFileName() == "squeeze-studio"
    assert not application_icon().pixmap(size, size).isNull()

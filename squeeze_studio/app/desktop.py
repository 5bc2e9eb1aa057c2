"""Desktop integration for the current user: a freedesktop menu entry and hicolor icons.

``squeeze-studio --install-desktop-entry`` writes

- ``$XDG_DATA_HOME/applications/squeeze-studio.desktop`` (``~/.local/share/applications``): the menu entry, with
  ``MimeType=image/png;image/jpeg;image/webp;`` so "Open with" offers the app for images (they become references),
  and ``Exec`` pointing at this install's ``squeeze-studio``;
- ``$XDG_DATA_HOME/icons/hicolor/{16..512}x{..}/apps/squeeze-studio.png`` and ``scalable/apps/squeeze-studio.svg``;

then refreshes the desktop and icon caches where their tools exist. ``--uninstall-desktop-entry`` removes
exactly those files. The window sets ``QGuiApplication.setDesktopFileName("squeeze-studio")`` so Wayland
compositors match the window to this entry and show its icon. No Qt here: plain files.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

APP_ID = "squeeze-studio"  # the .desktop file's name, the icon name, the Wayland app id and the X11 WM_CLASS
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
MIME_TYPES = ("image/png", "image/jpeg", "image/webp")
ICONS_DIR = Path(__file__).resolve().parents[2] / "resources" / "icons"


def icon_files(folder: Path = ICONS_DIR) -> dict[int, Path]:
    """The shipped PNG per size, and the SVG under key 0."""
    found = {size: folder / f"{APP_ID}-{size}.png" for size in ICON_SIZES}
    found[0] = folder / f"{APP_ID}.svg"
    return {size: path for size, path in found.items() if path.is_file()}


def xdg_data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def launch_command() -> list[str]:
    """How the menu entry starts this install: the packaged launcher (``$SQUEEZE_STUDIO_LAUNCHER``, set by the
    Linux build), else its ``squeeze-studio`` script, else ``python -m``."""
    launcher = os.environ.get("SQUEEZE_STUDIO_LAUNCHER")
    if launcher and Path(launcher).is_file():
        return [str(Path(launcher).resolve())]
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == APP_ID and argv0.is_file():
        return [str(argv0.resolve())]
    beside = Path(sys.executable).with_name(APP_ID)
    if beside.is_file():
        return [str(beside)]
    return [str(Path(sys.executable).resolve()), "-m", "squeeze_studio.app.main"]


def quote_exec_argument(arg: str) -> str:
    """An ``Exec`` argument per the Desktop Entry spec: ``%`` doubled; quoted when it holds a reserved character,
    with ``"`` `` ` `` ``$`` ``\\`` backslash-escaped inside the quotes, then ``\\`` doubled again as the key's
    string escape."""
    arg = arg.replace("%", "%%")
    if arg and not re.search(r"[\s\"'\\><~|&;$*?#()`]", arg):
        return arg
    inner = re.sub(r'(["`$\\])', r"\\\1", arg)
    return ('"' + inner + '"').replace("\\", "\\\\")


def desktop_entry(command: list[str]) -> str:
    exec_line = " ".join(quote_exec_argument(a) for a in command) + " %F"
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.4",
        "Name=Squeeze Studio",
        "GenericName=Subject-Driven Image Generator",
        "Comment=New images of one subject from a few pictures and an instruction",
        f"Exec={exec_line}",
        f"Icon={APP_ID}",
        "Terminal=false",
        "StartupNotify=true",
        f"StartupWMClass={APP_ID}",
        "Categories=Graphics;2DGraphics;RasterGraphics;",
        "Keywords=image;generation;diffusion;subject;reference;AI;",
        "MimeType=" + "".join(f"{m};" for m in MIME_TYPES),
    ]
    if len(command) == 1:
        lines.insert(6, f"TryExec={command[0]}")
    return "\n".join(lines) + "\n"


def entry_paths(data_home: Path | None = None) -> tuple[Path, dict[int, Path]]:
    """Where the entry and each icon go (key 0: the scalable SVG)."""
    home = data_home or xdg_data_home()
    hicolor = home / "icons" / "hicolor"
    icons = {size: hicolor / f"{size}x{size}" / "apps" / f"{APP_ID}.png" for size in ICON_SIZES}
    icons[0] = hicolor / "scalable" / "apps" / f"{APP_ID}.svg"
    return home / "applications" / f"{APP_ID}.desktop", icons


def install_desktop_entry(data_home: Path | None = None, command: list[str] | None = None) -> list[Path]:
    """Write the menu entry and the icons; returns the files written."""
    entry, targets = entry_paths(data_home)
    sources = icon_files()
    if 0 not in sources:
        raise FileNotFoundError(f"the application icon is missing from {ICONS_DIR}")
    written = []
    for size, target in targets.items():
        if size in sources:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sources[size], target)
            written.append(target)
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(desktop_entry(command or launch_command()), encoding="utf-8")
    entry.chmod(0o755)  # some file managers only trust an executable entry
    written.append(entry)
    _refresh_caches(entry.parent, targets[0].parents[2])
    return written


def uninstall_desktop_entry(data_home: Path | None = None) -> list[Path]:
    """Remove the entry and the icons this command installs (folders it leaves empty too); returns the removed."""
    entry, targets = entry_paths(data_home)
    removed = []
    for path in [entry, *targets.values()]:
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(path)
            _remove_empty_parents(path.parent, stop=(data_home or xdg_data_home()))
    _refresh_caches(entry.parent, targets[0].parents[2])
    return removed


def _remove_empty_parents(folder: Path, stop: Path) -> None:
    """Empty ``apps/`` and size folders go; the shared roots (``applications``, ``hicolor``) always stay."""
    keep = {stop, stop / "applications", stop / "icons", stop / "icons" / "hicolor"}
    while folder not in keep and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _refresh_caches(applications: Path, hicolor: Path) -> None:
    """Best effort: refresh the MIME cache of the menu entries and the icon theme cache, where those tools exist
    and such a cache is already there (desktops read a user's entries and icons without one; never create one)."""
    tools = (("update-desktop-database", ["-q", str(applications)], applications / "mimeinfo.cache"),
             ("gtk-update-icon-cache", ["-q", "-t", "-f", str(hicolor)], hicolor / "icon-theme.cache"))
    for tool, args, cache in tools:
        path = shutil.which(tool)
        if path and cache.is_file():
            try:
                subprocess.run([path, *args], capture_output=True, timeout=30, check=False)
            except (OSError, subprocess.SubprocessError):
                pass


def main_install(uninstall: bool = False) -> int:
    """The ``--install-desktop-entry`` / ``--uninstall-desktop-entry`` commands: one line, exit 0 (2 on failure)."""
    try:
        if uninstall:
            removed = uninstall_desktop_entry()
            print(f"removed {len(removed)} files (menu entry and icons)" if removed else "nothing to remove")
        else:
            written = install_desktop_entry()
            print(f"installed {written[-1]} and {len(written) - 1} icons")
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0

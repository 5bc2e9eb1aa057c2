"""Before Qt starts: can it open a window here? If not, say why in a few lines and exit 2.

Without this, a missing system library (a minimal Debian, a container) makes Qt print "could not load the Qt
platform plugin xcb" and abort the process. Here the platform plugin Qt would use is loaded first, the same way
Qt loads it; when that fails, ``ldd`` names every library it lacks, and the message gives the package to install
on Debian/Ubuntu and on Fedora. No display at all (no ``DISPLAY``, no ``WAYLAND_DISPLAY``) is said as such.

Only Linux (and other X11/Wayland systems) is checked: macOS and Windows platform plugins have no system
libraries to miss. Plain Python plus ``QtCore`` (for Qt's plugin folder); nothing here creates a Qt application.
"""
from __future__ import annotations

import ctypes
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

EXIT_CODE = 2
# Platforms that need no display and nothing beyond Qt itself (or that we cannot check usefully).
NO_DISPLAY_NEEDED = ("offscreen", "minimal", "minimalegl", "vnc", "linuxfb", "eglfs", "vkkhrdisplay")

# Shared library -> (Debian/Ubuntu package, Fedora package): the dependencies of Qt's xcb and wayland plugins.
PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libSM.so.6": ("libsm6", "libSM"),
    "libICE.so.6": ("libice6", "libICE"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libwayland-client.so.0": ("libwayland-client0", "libwayland-client"),
    "libwayland-cursor.so.0": ("libwayland-cursor0", "libwayland-cursor"),
    "libwayland-egl.so.1": ("libwayland-egl1", "libwayland-egl"),
}


@dataclass
class PlatformProblem:
    """Why the platform ``platform`` cannot open a window; ``missing`` lists libraries, ``detail`` the rest."""

    platform: str
    missing: list[str] = field(default_factory=list)
    no_display: bool = False
    detail: str = ""


def chosen_platforms(argv: list[str], environ: dict[str, str]) -> list[str]:
    """The platform plugins Qt will try, in order: ``-platform NAME``, ``$QT_QPA_PLATFORM`` (``a;b`` lists), else
    what Qt 6 picks on Linux: wayland first in a Wayland session, then xcb."""
    for index, arg in enumerate(argv):
        if arg in ("-platform", "--platform") and index + 1 < len(argv):
            return _names(argv[index + 1])
        if arg.startswith(("-platform=", "--platform=")):
            return _names(arg.split("=", 1)[1])
    if environ.get("QT_QPA_PLATFORM"):
        return _names(environ["QT_QPA_PLATFORM"])
    if environ.get("WAYLAND_DISPLAY") or environ.get("XDG_SESSION_TYPE") == "wayland":
        return ["wayland", "xcb"]
    return ["xcb"]


def _names(spec: str) -> list[str]:
    return [name.split(":", 1)[0].strip() for name in spec.split(";") if name.strip()]


def plugin_dirs(environ: dict[str, str]) -> list[Path]:
    """Where Qt looks for platform plugins: ``$QT_QPA_PLATFORM_PLUGIN_PATH``, ``$QT_PLUGIN_PATH/platforms``, then
    the plugins that came with PySide6."""
    folders = []
    if environ.get("QT_QPA_PLATFORM_PLUGIN_PATH"):
        folders += [Path(p) for p in environ["QT_QPA_PLATFORM_PLUGIN_PATH"].split(os.pathsep) if p]
    if environ.get("QT_PLUGIN_PATH"):
        folders += [Path(p) / "platforms" for p in environ["QT_PLUGIN_PATH"].split(os.pathsep) if p]
    from PySide6.QtCore import QLibraryInfo

    folders.append(Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms")
    return folders


def find_plugin(platform: str, environ: dict[str, str]) -> Path | None:
    for folder in plugin_dirs(environ):
        candidate = folder / f"libq{platform}.so"
        if candidate.is_file():
            return candidate
    return None


def missing_libraries(plugin: Path) -> list[str]:
    """The shared libraries ``plugin`` needs and the system lacks; empty when it loads."""
    try:
        ctypes.CDLL(str(plugin))  # what Qt does (dlopen); cheap, and the libraries are needed anyway
        return []
    except OSError as error:
        first = str(error)
    import shutil
    import subprocess

    found: list[str] = []
    ldd = shutil.which("ldd")
    if ldd:
        from PySide6.QtCore import QLibraryInfo

        # Qt's own libraries are found the way Qt finds them (already loaded here; ldd needs to be told).
        qt_libs = QLibraryInfo.path(QLibraryInfo.LibraryPath.LibrariesPath)
        env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(
            p for p in (qt_libs, os.environ.get("LD_LIBRARY_PATH", "")) if p)}
        try:
            output = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20, env=env).stdout
            for line in output.splitlines():
                match = re.match(r"\s*(\S+)\s+=>\s+not found", line)
                if match and match.group(1) not in found:
                    found.append(match.group(1))
        except (OSError, subprocess.SubprocessError):
            pass
    if not found:  # no ldd (or it saw nothing): dlopen's own message names the first missing library
        match = re.match(r"(?:.*?: )?([^\s:]+\.so[^\s:]*): cannot open shared object file", first)
        found = [match.group(1)] if match else []
    return found or [f"(unknown: {first.strip()})"]


def x_display_reachable(display: str) -> bool:
    """For a local display (``:0``, ``:1.0``, ``unix:0``), whether an X server listens on its socket. Remote and
    forwarded displays (``host:10.0``) are not probed: True."""
    match = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display.strip())
    if not match:
        return True
    path = f"/tmp/.X11-unix/X{match.group(1)}"
    if os.path.exists(path):  # the usual case, without a connection (the socket module costs start-up time)
        return True
    import socket

    for address in (path, "\0" + path):  # the file, then Linux's abstract socket of the same name
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            try:
                sock.connect(address)
                return True
            except OSError:
                continue
    return False


def check_platform(platform: str, environ: dict[str, str]) -> PlatformProblem | None:
    if platform in NO_DISPLAY_NEEDED:
        return None
    if platform == "xcb" and not environ.get("DISPLAY"):
        return PlatformProblem(platform, no_display=True)
    if platform == "wayland" and not environ.get("WAYLAND_DISPLAY") and environ.get("XDG_SESSION_TYPE") != "wayland":
        return PlatformProblem(platform, no_display=True)
    plugin = find_plugin(platform, environ)
    if plugin is None:
        if platform in ("xcb", "wayland"):
            return PlatformProblem(platform, detail=f"Qt's {platform} platform plugin is not installed with PySide6")
        return None  # a platform we do not know: let Qt speak for itself
    missing = missing_libraries(plugin)
    if missing:
        return PlatformProblem(platform, missing=missing)
    if platform == "xcb" and not x_display_reachable(environ["DISPLAY"]):
        return PlatformProblem(platform, detail=f"no X server answers on DISPLAY={environ['DISPLAY']}")
    return None


def check(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> str | None:
    """None when a window can open; else the message to print. Checks every platform Qt would try, so one that
    works is enough."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    argv = sys.argv[1:] if argv is None else argv
    environ = dict(os.environ if environ is None else environ)
    problems = []
    for platform in chosen_platforms(argv, environ):
        problem = check_platform(platform, environ)
        if problem is None:
            return None
        problems.append(problem)
    return describe(problems)


def describe(problems: list[PlatformProblem]) -> str:
    """One short message: the first problem that is not a missing display, else "no display"."""
    real = [p for p in problems if not p.no_display]
    if not real:
        return ("squeeze-studio: no display: neither DISPLAY nor WAYLAND_DISPLAY is set, so there is no screen to "
                "open the window on.\nStart it from a desktop session (or over ssh -X). To check the install without "
                "a window: squeeze-studio --self-test")
    problem = real[0]
    if not problem.missing:
        return f"squeeze-studio: cannot open a window: {problem.detail}."
    debian = sorted({PACKAGES[name][0] for name in problem.missing if name in PACKAGES})
    fedora = sorted({PACKAGES[name][1] for name in problem.missing if name in PACKAGES})
    unknown = [name for name in problem.missing if name not in PACKAGES]
    lines = [f"squeeze-studio: cannot open a window: Qt's {problem.platform} platform plugin needs system "
             f"libraries that are missing: {', '.join(problem.missing)}",
             "Install them, then start again:"]
    if debian:
        lines.append(f"  Debian/Ubuntu:  sudo apt install {' '.join(debian)}")
        lines.append(f"  Fedora:         sudo dnf install {' '.join(fedora)}")
    for name in unknown:
        lines.append(f"  {name}: find its package with `apt-file search {name}` or `dnf provides '*/{name}'`")
    return "\n".join(lines)


def exit_if_no_window(argv: list[str] | None = None) -> None:
    """Print the message and exit with status 2 when no window can open; return otherwise."""
    message = check(argv)
    if message:
        print(message, file=sys.stderr)
        raise SystemExit(EXIT_CODE)

"""The desktop's launcher progress (Unity LauncherEntry over D-Bus; Qt 6 has no taskbar progress API), checked on
a private session bus with ``dbus-monitor`` where the D-Bus tools are installed."""
import shutil
import subprocess
import sys
import textwrap

import pytest

from .test_startup import ROOT

SEND = textwrap.dedent("""
    import subprocess, sys, time
    monitor = subprocess.Popen(["dbus-monitor", "--session",
                                "type='signal',interface='com.canonical.Unity.LauncherEntry'"],
                               stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    from PySide6.QtCore import QCoreApplication
    app = QCoreApplication([])
    from squeeze_studio.app.launcher_progress import LauncherProgress
    progress = LauncherProgress()
    print("AVAILABLE", progress.available, flush=True)
    for fraction in (0.25, 0.251, 0.5, None):  # 0.251 rounds to the per cent already sent: not sent again
        progress.show(fraction)
    time.sleep(0.3)
    monitor.terminate()
    print(monitor.communicate()[0])
""")


@pytest.mark.skipif(not (shutil.which("dbus-run-session") and shutil.which("dbus-monitor")),
                    reason="no D-Bus tools here")
def test_progress_reaches_the_session_bus_as_a_launcher_entry_update():
    result = subprocess.run(["dbus-run-session", "--", sys.executable, "-c", SEND], capture_output=True, text=True,
                            timeout=60, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                       "QT_QPA_PLATFORM": "offscreen"})
    out = result.stdout
    assert "AVAILABLE True" in out, result.stderr
    assert out.count("member=Update") == 3
    assert 'string "application://squeeze-studio.desktop"' in out
    values = [line.split()[-1] for line in out.splitlines() if "double" in line]
    visible = [line.split()[-1] for line in out.splitlines() if "boolean" in line]
    assert (values, visible) == (["0.25", "0.5", "0"], ["true", "true", "false"])


def test_no_session_bus_sends_nothing(monkeypatch):
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    from squeeze_studio.app.launcher_progress import LauncherProgress

    progress = LauncherProgress()
    assert not progress.available
    progress.show(0.5)  # nothing to send it to, and no error

"""Start-up: no torch in the GUI thread, the real ``main()`` with qasync, command-line references."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "diffusers", "transformers")


def run_python(code: str, home: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SQUEEZE_STUDIO_HOME": str(home),
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_creating_the_main_window_does_not_import_torch(tmp_path):
    result = run_python("""
        import sys
        from PySide6.QtWidgets import QApplication
        from squeeze_studio.app.main import configure_application, create_window
        app = QApplication([])
        configure_application(app)
        window = create_window()
        window.show()
        app.processEvents()
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "diffusers", "transformers"))
        print("HEAVY", heavy)
        window.close()
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert "Destroyed while thread" not in result.stderr


def test_no_app_module_imports_torch_at_module_level(tmp_path):
    result = run_python("""
        import importlib, pkgutil, sys
        import squeeze_studio.app as app
        for module in pkgutil.walk_packages(app.__path__, "squeeze_studio.app."):
            importlib.import_module(module.name)
        print("HEAVY", sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "diffusers", "transformers")))
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_main_opens_the_window_with_command_line_references(tmp_path, images):
    """The real entry point, with qasync's loop (so the folder scan runs off the GUI thread)."""
    folder = str(Path(images[0]).parent)
    result = run_python(f"""
        import sys
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        import threading
        import squeeze_studio.app.model.inputs_room as inputs_module
        from squeeze_studio.app.main import main
        from squeeze_studio.app.ui.main_window import MainWindow

        scanned_on = []
        plan_drop = inputs_module.plan_drop
        def recording_plan_drop(paths):
            scanned_on.append(threading.current_thread() is threading.main_thread())
            return plan_drop(paths)
        inputs_module.plan_drop = recording_plan_drop

        app = QApplication([])
        tries = []
        def check():
            tries.append(1)
            windows = [w for w in app.topLevelWidgets()
                       if isinstance(w, MainWindow) and w.isVisible() and w.studio is not None]
            if windows and (windows[0].studio.subjects.references() or len(tries) > 5000):
                print("REFS", windows[0].studio.subjects.references())
                print("SCANNED ON MAIN THREAD", scanned_on)
                windows[0].close()
            else:
                QTimer.singleShot(20, check)
        QTimer.singleShot(0, check)
        sys.exit(main([{folder!r}]))
    """, tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"REFS {images!r}" in result.stdout
    assert "SCANNED ON MAIN THREAD [False]" in result.stdout
    assert "Destroyed while thread" not in result.stderr


def test_the_model_loads_only_once_the_complete_window_is_painted(tmp_path):
    """The worker's torch import holds the GIL for long stretches: started with the workspace, it doubled the time
    to the complete window's first paint (bench_app.py). The load starts after that paint, once."""
    result = run_python("""
        import sys
        from PySide6.QtCore import QEvent, QObject, QTimer
        from PySide6.QtWidgets import QApplication
        import squeeze_studio.app.model.models_room as models_module
        from squeeze_studio.app.main import AppStart, configure_application

        app = QApplication([])
        configure_application(app)
        start = AppStart(app, [])
        window, events = start.window, []

        class Paints(QObject):
            def eventFilter(self, watched, event):
                if event.type() == QEvent.Type.Paint and window.workspace is not None:
                    events.append("complete paint")
                return False
        paints = Paints()
        window.installEventFilter(paints)
        models_module.ModelsRoom.preload_model = lambda self: events.append("load")
        QTimer.singleShot(3000, window.close)
        start.run()
        print("FIRST", events[0], "LOADS", events.count("load"))
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "FIRST complete paint LOADS 1" in result.stdout, result.stdout


def test_no_app_module_imports_main():
    """``main`` is the top: it calls the others (``self_test`` gets ``configure_application`` passed in), none imports
    it back, so no import cycle runs through the entry point."""
    import ast

    package = ROOT / "squeeze_studio" / "app"
    offenders = []
    for path in package.rglob("*.py"):
        if path.name == "main.py":
            continue
        package_parts = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package_parts[:len(package_parts) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                names = [module] + [f"{module}.{alias.name}" for alias in node.names]
                if "squeeze_studio.app.main" in names:
                    offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []

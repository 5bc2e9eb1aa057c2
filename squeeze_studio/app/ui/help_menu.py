"""The Help menu: the welcome panel again, every keyboard shortcut, the documentation, About."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox

README = Path(__file__).resolve().parents[3] / "README.md"  # a source checkout's; the docs/ folder beside it


def shortcut_lines(window: QMainWindow) -> list[str]:
    """"Ctrl+Return  Generate" for every action of the window's menus that has a shortcut, in menu order."""
    lines, seen = [], set()
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        if menu is None:
            continue
        for action in menu.actions():
            keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty()]
            name = action.text().replace("&", "")
            if keys and name not in seen:
                seen.add(name)
                lines.append(f"{' or '.join(keys)}\t{name}")
    return lines


def add_help_menu(window) -> None:
    menu = window.menuBar().addMenu("&Help")
    window.help_actions = {}
    for text, slot, shortcut in (
            ("Welcome", lambda: window.show_welcome(False), None),
            ("Keyboard shortcuts", lambda: show_shortcuts(window), QKeySequence("Ctrl+/")),
            ("Documentation", lambda: open_documentation(window), QKeySequence.StandardKey.HelpContents),
            ("About Squeeze Studio", lambda: show_about(window), None)):
        action = QAction(text, window)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(lambda _checked=False, s=slot: s())
        menu.addAction(action)
        window.help_actions[text] = action


def open_documentation(window) -> None:
    if not README.is_file() or not QDesktopServices.openUrl(QUrl.fromLocalFile(str(README))):
        window.show_message(f"The documentation is the README and docs/ of the source: {README}")


def show_shortcuts(window) -> QMessageBox:
    lines = shortcut_lines(window) + ["Esc (in the instruction)\tCancel", "Double-click the stage bar\tModel defaults",
                                      "Wheel / drag / double-click\tZoom, pan, fit the image"]
    box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", "\n".join(lines), parent=window)
    box.setObjectName("shortcuts_box")
    box.setModal(False)
    box.show()
    return box


def show_about(window) -> None:
    from ... import __version__

    QMessageBox.about(window, "About Squeeze Studio",
                      f"Squeeze Studio {__version__}\n\nSubject-driven image generation: drop photos of a subject, "
                      "write an instruction, get new images of that subject.\nAn implementation of arXiv 2605.26111, "
                      "“Squeezing Capacity from MLLMs for Subject-driven Generation”.")

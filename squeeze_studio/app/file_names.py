"""File names are paths, never decoded text: a name that is not UTF-8 must still work.

On Linux a file name is bytes. Python keeps bytes that are not UTF-8 as lone surrogates (``os.fsdecode``), and
``os``/``open``/PIL take such strings back losslessly. Qt cannot: ``QString`` has no room for them, so
``QFile.decodeName`` and ``QUrl.toLocalFile`` turn them into U+FFFD (another file, which does not exist), and a
``QApplication`` built from such an argv crashes (SIGSEGV). Hence:

- the command line reaches Qt with such arguments replaced by placeholders, and the originals are put back
  (``qt_safe_arguments``, ``restore_arguments``);
- a drop's URLs are turned into paths from their percent-encoded bytes (``url_to_path``);
- a file whose name Qt cannot spell is read by Python and handed to Qt as bytes (``images.py``);
- a name is shown with U+FFFD where its bytes are not text (``display_name``), and never used as a path again.
"""
from __future__ import annotations

import os
from urllib.parse import unquote_to_bytes

PLACEHOLDER = "squeeze-studio-argument-{}-not-utf8"


def qt_can_name(path: str | os.PathLike) -> bool:
    """Whether Qt can open ``path`` by name: its text has no lone surrogates (bytes that were not UTF-8)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display_name(path: str | os.PathLike) -> str:
    """``path`` as text to show: bytes that are not UTF-8 become U+FFFD. Never use the result as a path."""
    text = os.fspath(path)
    return text if qt_can_name(text) else os.fsencode(text).decode("utf-8", "replace")


def qt_safe_arguments(arguments: list[str]) -> tuple[list[str], dict[str, str]]:
    """``arguments`` with every one Qt cannot take replaced by a placeholder, and placeholder -> original."""
    safe, originals = [], {}
    for index, argument in enumerate(arguments):
        if qt_can_name(argument):
            safe.append(argument)
        else:
            placeholder = PLACEHOLDER.format(index)
            originals[placeholder] = argument
            safe.append(placeholder)
    return safe, originals


def restore_arguments(arguments: list[str], originals: dict[str, str]) -> list[str]:
    return [originals.get(argument, argument) for argument in arguments]


def url_to_path(url) -> str | None:
    """The local path of a ``QUrl`` (None when it is not a local file), exact to the byte on POSIX."""
    if not url.isLocalFile():
        return None
    if os.name != "posix" or url.host():
        return url.toLocalFile()
    from PySide6.QtCore import QUrl

    encoded = url.path(QUrl.ComponentFormattingOption.FullyEncoded)
    return os.fsdecode(unquote_to_bytes(encoded))

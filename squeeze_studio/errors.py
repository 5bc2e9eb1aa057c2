"""One line of an error for the user: what the CLI prints after ``error:``, the window's status bar shows and
the engine wraps. Plain Python (the window imports it at start-up)."""
from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The error's first non-empty line of text, or its type's name when it has no text."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

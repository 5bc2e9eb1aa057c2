"""Opening the history index when it may be damaged: never a blank window, never a result lost from the list.

A ``history.sqlite`` full of random bytes, cut short, or in a folder that cannot be written once made
``HistoryIndex()`` raise inside the window's ``build()``: an empty grey frame, and the same at every restart. Now the
file that cannot be used is moved aside with a timestamped name (``history.damaged-20250101-120000.sqlite``, with
its ``-wal``/``-shm``), a fresh index is made and filled from the results folder: every result PNG carries its full
recipe. When the data folder cannot be written, the rebuilt index lives in memory for this session. The window
says what happened (``open_history``'s message, shown in the history panel).
"""
from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from ...errors import first_line
from .history_index import HistoryIndex, history_db_path
from .paths import set_aside_name

log = logging.getLogger(__name__)
MAX_REBUILD = 5000  # newest PNGs read back into a rebuilt index (the strip lists 500)


def open_history(path: Path | None = None, results: list[Path] | None = None) -> tuple[HistoryIndex, str]:
    """The history index at ``path`` (default: the data folder's), and "" or one line saying what was repaired.

    ``results``: the folders whose PNGs rebuild a fresh index (default: the results folder)."""
    path = path or history_db_path()
    try:
        return _checked(HistoryIndex(path)), ""
    except (sqlite3.Error, OSError) as error:
        reason = first_line(error)
        log.warning("the history index %s cannot be used: %s", path, reason)
    aside = _move_aside(path)
    try:
        index, in_memory = HistoryIndex(path), False
    except (sqlite3.Error, OSError) as error:
        log.warning("cannot make a new history index in %s: %s", path.parent, first_line(error))
        index, in_memory = HistoryIndex(Path(":memory:")), True
    if results is None:
        from .paths import results_dir

        results = [results_dir()]
    count = rebuild_from_pngs(index, results)
    found = f"rebuilt from {count} result{'s' if count != 1 else ''} in {results[0]}" if results else "started anew"
    text = f"The history database could not be opened ({reason})"
    if aside is not None:
        text += f"; it was kept as {aside.name}"
    if in_memory:
        text += f"; {path.parent} cannot be written, so the history is {found} for this session only"
    else:
        text += f"; the history was {found}"
    return index, text


def _checked(index: HistoryIndex) -> HistoryIndex:
    """``index`` once SQLite has read every page of it (a file cut short opens fine and fails later)."""
    try:
        rows = index._db.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            raise sqlite3.DatabaseError(f"database check failed: {rows[0][0] if rows else 'no answer'}")
        index._db.execute("SELECT count(*) FROM results").fetchone()
    except sqlite3.Error:
        index.close()
        raise
    return index


def _move_aside(path: Path) -> Path | None:
    """Move the unusable file (and its WAL and shared-memory files) aside; None when there is none or it cannot."""
    if not path.exists():
        return None
    aside = set_aside_name(path, "damaged")
    try:
        os.replace(path, aside)
    except OSError as error:
        log.warning("cannot move %s aside: %s", path, error)
        return None
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        try:
            if extra.exists():
                os.replace(extra, aside.with_name(aside.name + suffix))
        except OSError as error:
            log.warning("cannot move %s aside: %s", extra, error)
    return aside


def result_pngs(folders: list[Path]) -> list[Path]:
    """The PNGs directly in ``folders`` and in their subfolders (the results folder's day folders), newest first."""
    found = []
    for folder in folders:
        try:
            places = [folder, *(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())]
        except OSError:
            continue
        for place in places:
            try:
                found.extend(p for p in place.glob("*.png") if p.is_file() and not p.name.startswith("."))
            except OSError:
                continue
    return sorted(found, key=_mtime, reverse=True)[:MAX_REBUILD]


def rebuild_from_pngs(index: HistoryIndex, folders: list[Path]) -> int:
    """Add every result PNG under ``folders`` that carries a recipe to ``index``; returns how many."""
    from ...recipe import read_recipe
    from ..images import load_thumbnail, qimage_to_png_bytes

    count = 0
    for png in reversed(result_pngs(folders)):  # oldest first, so ids grow with time as when they were made
        request = read_recipe(png)
        if request is None:
            continue
        image = load_thumbnail(png)
        thumb = qimage_to_png_bytes(image) if not image.isNull() else None
        index.add(str(png), request, 0.0, "", thumb, created=_mtime(png))
        count += 1
    return count


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0

"""Where the app keeps things on disk, and an atomic file write that every store here shares.

- **The data folder** (history index, session autosave, window layout, subject libraries, pasted images) is the
  engine's own user data folder, ``hub.paths.user_data_dir()``: ``$SQUEEZE_STUDIO_HOME`` if set, else
  ``$XDG_DATA_HOME/squeeze-studio`` (``~/.local/share/squeeze-studio``). One folder for the window and the
  engine (its preview-map cache, the model folders the user added).
- **Results** go where people look for pictures: ``QStandardPaths.PicturesLocation / "Squeeze Studio"``
  (``~/Pictures/Squeeze Studio``), or the folder chosen with File > Results folder…. With
  ``$SQUEEZE_STUDIO_HOME`` set (tests, a portable install) and no folder chosen, results stay inside that folder.
- **The old data folder.** Up to 0.1.0 the window used Qt's AppDataLocation with the organisation
  "squeeze-studio" and the application "Squeeze Studio", i.e. ``~/.local/share/squeeze-studio/Squeeze Studio``.
  On first use its contents are moved up into the data folder, and the paths stored in the history index and the
  session are rewritten, so every result made before still opens (``migrate_legacy_folder``).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

HOME_ENV = "SQUEEZE_STUDIO_HOME"
RESULTS_FOLDER_NAME = "Squeeze Studio"  # inside the pictures folder
LEGACY_FOLDER_NAME = "Squeeze Studio"   # the old AppDataLocation's last part
SETTINGS_FILE = "window.ini"
RESULTS_KEY = "results/folder"
log = logging.getLogger(__name__)
_migrated: set[Path] = set()


def data_home() -> Path:
    """The data folder (created), shared with the engine; the old folder is moved in on first use."""
    from ...hub.paths import user_data_dir

    home = user_data_dir()
    if home not in _migrated:
        _migrated.add(home)
        if not os.environ.get(HOME_ENV):  # the old code used $SQUEEZE_STUDIO_HOME as it is: nothing to move
            for legacy in legacy_data_dirs():
                migrate_legacy_folder(legacy, home)
    return home


def data_folder_problem() -> str:
    """One line naming the data folder when it cannot be used (a file stands there, or it cannot be made), else "".
    ``main()`` prints it and exits 2 before anything else touches the folder."""
    from ...hub.paths import user_data_dir

    try:
        home = user_data_dir()
    except OSError as error:
        folder = Path(error.filename) if getattr(error, "filename", None) else None
        blocker = next((p for p in ([folder, *folder.parents] if folder else []) if p.is_file()), None)
        if blocker is not None and blocker == folder:
            why = "it is a file, not a folder"
        elif blocker is not None:
            why = f"{blocker} is a file, not a folder"
        else:
            why = error.strerror or type(error).__name__
        return (f"squeeze-studio: cannot use the data folder {folder or 'here'}: {why} (move it away, or set "
                f"${HOME_ENV} to another folder)")
    if not home.is_dir():
        return f"squeeze-studio: cannot use the data folder {home}: it is not a folder (set ${HOME_ENV} to another)"
    return ""


def settings() -> QSettings:
    """The window's settings file in the data folder (layout, results folder, first-run flags)."""
    return QSettings(str(data_home() / SETTINGS_FILE), QSettings.Format.IniFormat)


def default_results_dir() -> Path:
    if os.environ.get(HOME_ENV):
        return data_home() / "results"
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    return Path(pictures) / RESULTS_FOLDER_NAME if pictures else data_home() / "results"


def results_dir() -> Path:
    """Where new results are written: the folder chosen in the settings, else ``default_results_dir()``."""
    chosen = settings().value(RESULTS_KEY, "")
    return Path(str(chosen)).expanduser() if chosen else default_results_dir()


def set_results_dir(folder: str | os.PathLike | None) -> Path:
    """Choose the results folder (None or "" goes back to the default); returns the folder now in use."""
    store = settings()
    if folder:
        store.setValue(RESULTS_KEY, str(Path(folder).expanduser()))
    else:
        store.remove(RESULTS_KEY)
    store.sync()
    return results_dir()


def libraries_dir() -> Path:
    return data_home() / "libraries"


def pasted_dir() -> Path:
    """Clipboard images are written here so a reference is always a file (recipes store paths)."""
    return data_home() / "pasted"


def unsaved_dir() -> Path:
    """Results that could not be written to the results folder are kept here when the window closes."""
    return data_home() / "unsaved"


PARTIAL_PREFIX = ".partial-"  # the temp files of ``atomic_write_bytes`` and ``recipe.save_png``
_STARTED = time.time()


def remove_partial_files(folder: Path, older_than: float | None = None) -> int:
    """Delete the temp files a crash (or ``kill -9``) left in ``folder`` and its day folders while writing a result.

    Only ``.partial-*`` files last written before ``older_than`` (default: when this process started) go, so a
    write in progress elsewhere is left alone; a finished PNG is never touched. Returns how many were removed."""
    cutoff = _STARTED if older_than is None else older_than
    removed = 0
    try:
        folders = [folder, *(entry for entry in folder.iterdir() if entry.is_dir() and not entry.is_symlink())]
    except OSError:
        return 0  # not there (yet), or unreadable
    for place in folders:
        try:
            candidates = list(place.glob(PARTIAL_PREFIX + "*"))
        except OSError:
            continue
        for path in candidates:
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError as error:
                log.warning("could not remove the leftover %s: %s", path, error)
    if removed:
        log.warning("removed %d unfinished temp file(s) left in %s by a crash", removed, folder)
    return removed


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder + rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=PARTIAL_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def set_aside_name(path: Path, why: str) -> Path:
    """A free name beside ``path`` for a file kept aside: ``session.unreadable-20250101-120000.json``. Timestamped
    and never an existing file, so a second bad file never overwrites the first one kept."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.stem}.{why}-{stamp}{path.suffix}")
    number = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}.{why}-{stamp}-{number}{path.suffix}")
        number += 1
    return candidate


# --- the old data folder ------------------------------------------------------------------------------
def legacy_data_dirs() -> list[Path]:
    """Where Qt's AppDataLocation put the data with the old names (organisation "squeeze-studio", application
    "Squeeze Studio"), per platform."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return [base / "squeeze-studio" / LEGACY_FOLDER_NAME]


def migrate_legacy_folder(legacy: Path, home: Path) -> bool:
    """Move everything in ``legacy`` into ``home`` and rewrite the paths the history index and the session keep.

    A name that exists in both is merged (folders) or kept beside as ``NAME.old-folder`` (files). Nothing is
    deleted; a move that fails leaves that entry where it was (and the history still finds it there). Returns
    whether anything was moved."""
    if not legacy.is_dir() or legacy.resolve() == home.resolve():
        return False
    moved = False
    for entry in sorted(legacy.iterdir()):
        try:
            moved |= _move_into(entry, home / entry.name)
        except OSError as error:
            log.warning("could not move %s from the old data folder: %s", entry, error)
    old, new = str(legacy), str(home)
    _rewrite_history(home / "history.sqlite", old, new)
    session = home / "session.json"
    if session.is_file():
        try:
            data = json.loads(session.read_text(encoding="utf-8"))
            atomic_write_bytes(session, json.dumps(_rewrite(data, old, new), indent=1).encode("utf-8"))
        except (OSError, ValueError) as error:
            log.warning("could not update the paths in %s: %s", session, error)
    try:
        legacy.rmdir()  # only when everything moved
    except OSError:
        pass
    if moved:
        log.warning("moved the data folder %s into %s", legacy, home)
    return moved


def _move_into(source: Path, target: Path) -> bool:
    if not target.exists():
        shutil.move(str(source), str(target))
        return True
    if source.is_dir() and target.is_dir() and not source.is_symlink():
        moved = False
        for child in sorted(source.iterdir()):
            moved |= _move_into(child, target / child.name)
        try:
            source.rmdir()
        except OSError:
            pass
        return moved
    aside = target.with_name(target.name + ".old-folder")
    if aside.exists():
        return False
    shutil.move(str(source), str(aside))
    return True


def _swap_prefix(text: str, old: str, new: str) -> str:
    if text == old or text.startswith(old + os.sep) or text.startswith(old + "/"):
        return new + text[len(old):]
    return text


def _rewrite(value, old: str, new: str):
    """Every string in a JSON value that is a path under ``old``, now under ``new``."""
    if isinstance(value, str):
        return _swap_prefix(value, old, new)
    if isinstance(value, list):
        return [_rewrite(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _rewrite(v, old, new) for k, v in value.items()}
    return value


def _rewrite_history(db_path: Path, old: str, new: str) -> None:
    if not db_path.is_file():
        return
    try:
        db = sqlite3.connect(str(db_path))
        try:
            rows = db.execute("SELECT id, path, request_json FROM results").fetchall()
            for record_id, path, request_json in rows:
                new_path = _swap_prefix(path, old, new)
                try:
                    new_json = json.dumps(_rewrite(json.loads(request_json), old, new))
                except ValueError:
                    new_json = request_json
                if new_path != path or new_json != request_json:
                    db.execute("UPDATE OR IGNORE results SET path = ?, request_json = ? WHERE id = ?",
                               (new_path, new_json, record_id))
            db.commit()
        finally:
            db.close()
    except sqlite3.Error as error:
        log.warning("could not update the paths in %s: %s", db_path, error)

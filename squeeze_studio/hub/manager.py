"""The model manager: what is installed, the folders the user added, downloads and removal.

Installed models come from three places: the built-in demo, the Hugging Face cache (only repos whose
``model_index.json`` is a ``QwenImageEditPlusPipeline`` or ``SqueezePipeline``, plus partial downloads of the
models the registry knows) and folders the user added (``models.json`` in the user data folder). The list is
quick and plain Python: file checks only (``verify.check_files``); ``verify.verify_model`` does the full check.

Downloads go through ``huggingface_hub`` into its cache, only when asked: the free disk is checked against the
bytes still missing first. A file lands in the snapshot only once complete (``huggingface_hub`` writes to a
temporary file and moves it), so a cancelled or killed download leaves complete files and nothing
half-written; running it again fetches only what is missing. Within a run huggingface_hub resumes a transfer
that breaks mid-file (an HTTP Range request); a file left unfinished by a stop is fetched again next time.

Errors are ``ValueError`` with one line. No torch here.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import first_line
from .paths import hf_cache_dir, user_data_dir
from .registry import known_model
from .source import PIPELINE_KINDS, looks_like_repo_id, model_kind
from .verify import check_files

log = logging.getLogger(__name__)

DEMO_NAME = "Built-in demo model"
FOLDERS_FILE = "models.json"


@dataclass
class InstalledModel:
    """One model on disk, as the list shows it."""

    name: str  # repo id, folder name, or DEMO_NAME
    location: str  # "cache" | "folder" | "demo"
    path: Path  # the snapshot folder or the folder
    repo_id: str | None
    revision: str | None  # the ref ("main") or commit of a cache snapshot
    size_bytes: int
    complete: bool
    problem: str  # "" when complete, else one line
    kind: str  # "squeeze" | "stock" | "" (unknown)


class DownloadCancelled(Exception):
    """The user cancelled a download; complete files stay in the cache, nothing half-written."""


# --- listing --------------------------------------------------------------------------------------------------

def list_installed() -> list[InstalledModel]:
    """The demo first, then Qwen-Image-Edit-Plus-like repos in the Hugging Face cache, then the user's folders."""
    from ..models import default_model_path

    found = []
    demo = default_model_path()
    if demo is not None:
        found.append(_describe(demo, DEMO_NAME, "demo"))
    found.extend(_cached_models())
    found.extend(_describe(folder, folder.name, "folder") for folder in user_folders())
    return found


def _describe(folder: Path, name: str, location: str, repo_id: str | None = None,
              revision: str | None = None) -> InstalledModel:
    problems = check_files(folder)
    try:
        kind = model_kind(folder)
    except ValueError:
        kind = ""
    return InstalledModel(name=name, location=location, path=folder, repo_id=repo_id, revision=revision,
                          size_bytes=folder_size(folder), complete=not problems,
                          problem=_one_line(problems), kind=kind)


def _one_line(problems: list[str]) -> str:
    if not problems:
        return ""
    return problems[0] + (f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else "")


def _cached_models() -> list[InstalledModel]:
    """Model repos in the Hugging Face cache, read from its layout (``models--org--name/snapshots/<commit>``,
    ``refs/<name>``). Not ``scan_cache_dir``: it drops a repo with a missing blob as corrupted, and the list
    must show such a repo as incomplete instead."""
    cache = hf_cache_dir()
    repos = sorted(cache.glob("models--*")) if cache.is_dir() else []
    found = []
    for repo in sorted(repos, key=lambda r: r.name.lower()):
        repo_id = repo.name[len("models--"):].replace("--", "/")
        known = known_model(repo_id) is not None
        snapshots = [s for s in (repo / "snapshots").glob("*") if s.is_dir()]
        if not snapshots and known:  # a download that stopped before its first file landed
            found.append(InstalledModel(repo_id, "cache", repo, repo_id, None, folder_size(repo), False,
                                        "download not finished: no complete file yet", ""))
        refs = _refs(repo)
        for snapshot in sorted(snapshots, key=lambda s: s.stat().st_mtime, reverse=True):
            if not known and _pipeline_class(snapshot) not in PIPELINE_KINDS:
                continue
            names = sorted(name for name, commit in refs.items() if commit == snapshot.name)
            revision = "main" if "main" in names else (names[0] if names else snapshot.name)
            found.append(_describe(snapshot, repo_id, "cache", repo_id, revision))
    return found


def _refs(repo: Path) -> dict[str, str]:
    """Ref name (``main``, ``refs/pr/1`` as ``pr/1``) -> commit, from the cache's ``refs`` folder."""
    refs = {}
    for ref in (repo / "refs").rglob("*"):
        if ref.is_file():
            try:
                refs[ref.relative_to(repo / "refs").as_posix()] = ref.read_text().strip()
            except OSError:
                continue
    return refs


def _pipeline_class(folder: Path) -> str | None:
    try:
        return json.loads((folder / "model_index.json").read_text(encoding="utf-8")).get("_class_name")
    except (OSError, ValueError, AttributeError):
        return None


def folder_size(folder: Path) -> int:
    """Bytes the files under ``folder`` take on disk. Links are followed (a cache snapshot links to its blobs)
    and every file counts once, so a repo folder's blobs are not counted twice through its snapshots."""
    seen, total = set(), 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root, name)
            try:
                stat = path.stat()  # follows a snapshot's link to its blob
            except OSError:
                continue  # a dangling link: its blob is gone
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total


# --- folders the user added -------------------------------------------------------------------------------------

def _folders_file() -> Path:
    return user_data_dir() / FOLDERS_FILE


def user_folders() -> list[Path]:
    """The model folders the user added, in the order added (unreadable ``models.json``: none)."""
    try:
        data = json.loads(_folders_file().read_text(encoding="utf-8"))
        return [Path(p) for p in data.get("folders", []) if isinstance(p, str)]
    except (OSError, ValueError, AttributeError):
        return []


def add_user_folder(path: str | os.PathLike) -> None:
    """Remember a model folder (absolute path). ``ValueError`` when it is not a model folder Squeeze runs;
    callers check it whole first with ``verify.check_model``."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise ValueError(f"folder not found: {folder}")
    model_kind(folder)
    folders = user_folders()
    if folder not in folders:
        _write_folders([*folders, folder])


def remove_user_folder(path: str | os.PathLike) -> None:
    """Forget an added folder (its files stay). ``ValueError`` when it was not added."""
    folder = Path(path).expanduser().resolve()
    folders = user_folders()
    if folder not in folders:
        raise ValueError(f"not an added model folder: {folder}")
    _write_folders([f for f in folders if f != folder])


def _write_folders(folders: list[Path]) -> None:
    target = _folders_file()
    if target.exists():
        try:
            json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            shutil.copyfile(target, target.with_suffix(".json.bak"))  # keep what we could not read
    temporary = target.with_suffix(".json.tmp")
    temporary.write_text(json.dumps({"folders": [str(f) for f in folders]}, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, target)


# --- names ------------------------------------------------------------------------------------------------------

def repo_for(name: str, revision: str | None = None) -> tuple[str, str]:
    """(repo id, revision) for a registry key or a repo id; ``ValueError`` for the demo or an unknown name."""
    entry = known_model(name)
    if entry is not None and entry.repo_id is None:
        raise ValueError("the demo model is built in: nothing to download or remove")
    if entry is not None:
        return entry.repo_id, revision or entry.revision
    text = (name or "").strip()
    if not looks_like_repo_id(text) or ".." in text or "@" in text:
        from .registry import KNOWN_MODELS

        keys = ", ".join(m.key for m in KNOWN_MODELS if m.repo_id)
        raise ValueError(f"unknown model {text!r}: give a repo id like Qwen/Qwen-Image-Edit-2509 or one of {keys}")
    return text, revision or "main"


# --- download ---------------------------------------------------------------------------------------------------

def human_size(n: int) -> str:
    """``57.7 GB``, ``1.7 MB``: decimal units, as the Hub shows sizes."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def free_space(path: Path) -> int:
    """Free bytes on the disk that holds ``path`` (or the nearest folder above it that exists)."""
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def _endpoint() -> str:
    """The Hub address, read at call time (``HF_ENDPOINT``) so a mirror set after import still counts."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _check_online() -> None:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise ValueError("offline mode is on (HF_HUB_OFFLINE=1): unset it to download")


def download_size(repo_id: str, revision: str = "main", files: list[str] | None = None) -> int:
    """Bytes of ``repo_id`` at ``revision`` (only ``files``, when given) not yet in the cache. Asks the Hub: call it
    only when the user asked."""
    from huggingface_hub import snapshot_download

    _check_online()
    endpoint = _endpoint()
    try:
        listed = snapshot_download(repo_id, revision=revision, cache_dir=hf_cache_dir(), endpoint=endpoint,
                                   dry_run=True, allow_patterns=files,
                                   tqdm_class=_progress_class(0, None, lambda: False))
    except Exception as error:  # noqa: BLE001 - turned into one line below
        raise _hub_error(error, repo_id, revision, endpoint) from None
    return sum(f.file_size or 0 for f in listed if f.will_download)


def check_space(needed: int) -> tuple[int, Path]:
    """(free bytes, where) for the cache; ``ValueError`` in one line when ``needed`` bytes do not fit."""
    cache = hf_cache_dir()
    free = free_space(cache)
    if needed > free:
        raise ValueError(f"needs {human_size(needed)}, {human_size(free)} free on {cache}")
    return free, cache


def download(repo_id: str, revision: str = "main", progress: Callable[[int, int], None] | None = None,
             should_cancel: Callable[[], bool] | None = None, *, needed: int | None = None,
             files: list[str] | None = None) -> Path:
    """Fetch ``repo_id`` (only ``files``, when given: one LoRA of a repo of many) into the Hugging Face cache and
    return its snapshot folder.

    ``progress(done, total)`` is called from download threads (marshal it to a GUI thread yourself) with bytes
    fetched in this run out of ``total`` still needed. ``should_cancel()`` is polled (from those threads and
    the calling one); once true every transfer stops and ``DownloadCancelled`` is raised. Ctrl+C stops the
    transfers the same way, then raises ``KeyboardInterrupt``. ``needed``: the bytes ``download_size`` already
    returned (skips asking the Hub twice)."""
    from huggingface_hub import snapshot_download

    _check_online()
    endpoint = _endpoint()
    needed = download_size(repo_id, revision, files) if needed is None else needed
    check_space(needed)
    stop = threading.Event()

    def cancelled() -> bool:
        return stop.is_set() or bool(should_cancel and should_cancel())

    outcome: dict = {}

    def fetch() -> None:
        try:
            outcome["path"] = snapshot_download(repo_id, revision=revision, cache_dir=hf_cache_dir(),
                                                endpoint=endpoint, allow_patterns=files,
                                                tqdm_class=_progress_class(needed, progress, cancelled))
        except BaseException as error:  # noqa: BLE001 - handed to the calling thread
            outcome["error"] = error

    worker = threading.Thread(target=fetch, name=f"download {repo_id}", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
            if not stop.is_set() and cancelled():
                _stop_transfers(stop)
    except KeyboardInterrupt:
        log.warning("Ctrl+C: stopping the download; files already complete stay in the cache")  # before the wait
        _stop_transfers(stop)
        worker.join()  # nothing is left writing when we return
        raise
    error = outcome.get("error")
    if error is not None and (stop.is_set() or isinstance(error, DownloadCancelled)):
        raise DownloadCancelled(f"download of {repo_id} cancelled; complete files are kept") from None
    if error is not None:
        raise _hub_error(error, repo_id, revision, endpoint) from None
    if progress is not None:
        progress(needed, needed)
    return Path(outcome["path"])


def xet_in_use() -> bool:
    """Whether huggingface_hub fetches Xet-stored files (every large file on the Hub) through hf_xet: it does
    whenever hf_xet is installed, unless ``HF_HUB_DISABLE_XET`` is set."""
    import importlib.util

    from huggingface_hub import constants

    return not constants.HF_HUB_DISABLE_XET and importlib.util.find_spec("hf_xet") is not None


def _stop_transfers(stop: threading.Event) -> None:
    """Stop every transfer: HTTP ones raise at their next chunk (``_progress_class``); Xet ones (hf_xet) are
    aborted through huggingface_hub's Xet session, as huggingface_hub does on Ctrl+C. Either way the unfinished
    file is a temporary that huggingface_hub deletes.

    huggingface_hub has no public way to abort Xet transfers: ``abort_xet_session`` is private
    (``huggingface_hub.utils._xet``; a test checks it is there in the installed version). If it cannot be imported,
    a warning says so: the Xet transfers then end only when their files are complete. Only the HTTP path is
    tested against the loopback Hub (docs/RELIABILITY.md)."""
    stop.set()
    if not xet_in_use():
        return
    try:
        from huggingface_hub.utils._xet import abort_xet_session
    except ImportError as error:
        log.warning("cannot abort the Xet transfers with this huggingface_hub (%s): each ends once its file is "
                    "complete; HF_HUB_DISABLE_XET=1 downloads over plain HTTP, which stops at once", first_line(error))
        return
    abort_xet_session()


def _progress_class(total: int, progress: Callable[[int, int], None] | None, cancelled: Callable[[], bool]):
    """A silent tqdm class for ``snapshot_download``: counts bytes for ``progress`` and raises on cancel.

    huggingface_hub feeds the same bytes to two byte bars (transfer, reconstruction); the larger count is the
    progress. Every ``update`` checks ``cancelled``, so each transfer stops at its next chunk."""
    from tqdm.std import tqdm

    lock = threading.Lock()
    best = [0]

    class SilentBar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            self._is_bytes = kwargs.get("unit") == "B"
            self._bytes = 0
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            if cancelled():
                raise DownloadCancelled("cancelled")
            if not self._is_bytes or not n:
                return None
            with lock:
                self._bytes += n
                if self._bytes <= best[0]:
                    return None
                best[0] = self._bytes
                done = min(best[0], total) if total else best[0]
            if progress is not None:
                progress(done, total)
            return None

    return SilentBar


def _hub_error(error: BaseException, repo_id: str, revision: str, endpoint: str) -> BaseException:
    """A one-line ``ValueError`` for what went wrong talking to the Hub (other errors pass unchanged)."""
    from huggingface_hub import errors

    if isinstance(error, (KeyboardInterrupt, DownloadCancelled)):
        return error
    cause = error.__cause__ if isinstance(error, errors.DryRunError) and error.__cause__ else error
    if isinstance(cause, errors.GatedRepoError):
        return ValueError(f"{repo_id} is gated: accept its terms on the Hub and log in (hf auth login)")
    if isinstance(cause, errors.RevisionNotFoundError):
        return ValueError(f"revision {revision} of {repo_id} not found on {endpoint}")
    if isinstance(cause, errors.RepositoryNotFoundError):
        return ValueError(f"{repo_id} not found on {endpoint}")
    if isinstance(cause, errors.OfflineModeIsEnabled):
        return ValueError("offline mode is on (HF_HUB_OFFLINE=1): unset it to download")
    if isinstance(cause, errors.HfHubHTTPError):
        return ValueError(f"the Hub ({endpoint}) answered: {first_line(cause)}")
    if isinstance(cause, OSError) and not isinstance(cause, errors.LocalEntryNotFoundError):
        return ValueError(f"download of {repo_id} failed: {first_line(cause)}")
    if type(cause).__module__.split(".")[0].startswith("httpx") or isinstance(cause, errors.LocalEntryNotFoundError):
        return ValueError(f"cannot reach the Hub at {endpoint}: {first_line(cause)}")
    return error



# --- removal ----------------------------------------------------------------------------------------------------

def cache_folder(name: str) -> Path:
    """The cache folder of a repo id or registry key; ``ValueError`` when it is not cached."""
    from huggingface_hub.file_download import repo_folder_name

    repo_id, _ = repo_for(name)
    folder = hf_cache_dir() / repo_folder_name(repo_id=repo_id, repo_type="model")
    if not folder.is_dir():
        raise ValueError(f"{repo_id} is not in the Hugging Face cache ({hf_cache_dir()})")
    return folder


def remove_cached(repo_id: str) -> int:
    """Delete a repo (every revision, partial downloads too) from the Hugging Face cache; the bytes freed.

    Takes a registry key too. The caller asks for confirmation first."""
    folder = cache_folder(repo_id)
    freed = folder_size(folder)
    shutil.rmtree(folder)
    shutil.rmtree(folder.parent / ".locks" / folder.name, ignore_errors=True)
    return freed

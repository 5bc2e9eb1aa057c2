"""Results as PNG files that carry their full recipe in text chunks.

Two chunks: ``parameters`` in the A1111 style (readable by other tools and people) and
``squeeze_studio`` holding the exact ``GenerationRequest`` as JSON (what restores the settings).
Files are written atomically (temp file, fsync, rename), so a crash never leaves half a PNG behind.

A PNG read back may come from anyone (a dropped file): ``inspect_recipe`` treats it as untrusted. The image
size is checked from its header before Pillow opens it, the recipe chunk is capped, every field's type and
size is checked (``GenerationRequest.from_untrusted``), nothing is evaluated, and the paths it names outside
the user's folders come back in ``outside`` for the caller to confirm before following them.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, PngImagePlugin

from .copy_paste import CopyPaste
from .pictures import subject_legend
from .request import GenerationRequest

PARAMETERS_KEY = "parameters"
RECIPE_KEY = "squeeze_studio"
RECIPE_VERSION = 1
MAX_RECIPE_CHARS = 256 * 1024  # a real recipe is about 1 kB; Pillow caps all text chunks together at 64 MB
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _printable(text: str) -> str:
    """``text`` with control characters other than tab and newline shown as U+FFFD (the A1111 chunk is for
    people and other tools, which may cut a text chunk at a NUL; the JSON recipe keeps the exact text)."""
    return "".join("\ufffd" if c not in "\t\n" and unicodedata.category(c) == "Cc" else c for c in text)


def parameters_text(request: GenerationRequest, width: int, height: int, info: dict | None = None,
                    copy_paste: CopyPaste | None = None) -> str:
    """A1111-style summary: instruction, negative prompt, then one line of ``Key: value`` pairs."""
    fields = [
        ("Steps", request.num_inference_steps),
        ("Sampler", "FlowMatch Euler"),
        ("CFG scale", request.guidance_scale),
        ("Seed", request.seed),
        ("Size", f"{width}x{height}"),
        ("Model", request.model or "demo"),
        ("Stage tau1", request.tau1),
        ("Stage tau2", request.tau2),
        ("References", len(request.references)),
    ]
    if len(request.subjects) > 1:
        fields.append(("Subjects", subject_legend(request.subjects)))
    if request.addon:  # A1111 names LoRAs the same way: the file's stem
        fields.insert(6, ("Add-on", Path(request.addon).name))
    if request.loras:  # as A1111 writes them: name:weight, and the start of each file's sha256
        fields.append(("LoRAs", " ".join(f"{_lora_label(lora)}:{lora.get('weight', 1.0):g}" for lora in request.loras)))
        fields.append(("Lora hashes", '"' + ", ".join(f"{_lora_label(lora)}: {lora.get('sha256', '')[:12]}"
                                                      for lora in request.loras) + '"'))
    if request.cache != "none":
        fields.append(("Step cache", request.cache))
    if request.compile:
        fields.append(("Compiled", "yes"))
    if info and "forward_passes" in info:
        fields.append(("Forward passes", info["forward_passes"]))
    if copy_paste is not None:  # references counted from 1, as the window names them
        fields.append(("Copy-paste", f"{copy_paste.score:.2f} from reference {copy_paste.reference + 1}"))
    settings = ", ".join(f"{key}: {value}" for key, value in fields)
    return _printable(f"{request.instruction}\nNegative prompt: {request.negative_prompt}\n{settings}")


def _lora_label(lora: dict) -> str:
    return (lora.get("name") or Path(str(lora.get("path", ""))).stem).replace(",", " ").replace(":", " ")


def save_png(image: Image.Image, path: str | os.PathLike, request: GenerationRequest,
             info: dict | None = None, copy_paste: CopyPaste | None = None) -> Path:
    """Write ``image`` with its recipe to ``path`` atomically: a temp file in the same folder, flushed to disk,
    renamed over ``path``. On any failure the temp file is removed and ``path`` is untouched. ``info``: what the
    run took (``ImageResult.info``: forward passes, ...), stored as ``"result"`` beside the request, never restored;
    ``copy_paste``: the image's copy-paste score (``copy_paste.CopyPaste``), stored as ``"copy_paste"``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text(PARAMETERS_KEY, parameters_text(request, image.width, image.height, info, copy_paste))
    recipe = {"version": RECIPE_VERSION, "request": request.to_dict()}
    if info:
        recipe["result"] = info
    if copy_paste is not None:
        recipe["copy_paste"] = copy_paste.to_dict()
    chunks.add_text(RECIPE_KEY, json.dumps(recipe))
    fd, tmp = tempfile.mkstemp(prefix=".partial-", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, format="PNG", pnginfo=chunks)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX); best effort where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class RecipeCheck:
    """What ``inspect_recipe`` found in a file.

    ``request``: the restored request, or ``None``. ``problem``: one line saying why a recipe that is there
    could not be restored ("" when the file simply has none, or it was fine). ``outside``: the paths in the
    request (references, model folder, add-on) outside the user's folders: ask before following them.
    ``copy_paste``: the result's copy-paste score as saved, or ``None`` (none saved, or not well-formed)."""

    request: GenerationRequest | None = None
    problem: str = ""
    outside: list[str] = field(default_factory=list)
    copy_paste: CopyPaste | None = None


def inspect_recipe(path: str | os.PathLike, user_folders: list[str | os.PathLike] | None = None) -> RecipeCheck:
    """Read the recipe of a PNG written by ``save_png``, treating the file as untrusted. Never raises for a
    bad file. ``user_folders`` add to the default folders paths may point into (``default_user_folders``, and
    the PNG's own folder)."""
    path = Path(path)
    name = path.name
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
    except (OSError, ValueError):
        return RecipeCheck()  # not there or not readable: not a recipe
    if head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return RecipeCheck()  # recipes live in PNG files only
    width, height = struct.unpack(">II", head[16:24])
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        return RecipeCheck(problem=f"{name} claims {width} x {height} pixels, over the {limit:,}-pixel limit; "
                                   f"not opened")
    try:
        with Image.open(path) as image:
            text = image.info.get(RECIPE_KEY)
    except Image.DecompressionBombError:
        return RecipeCheck(problem=f"{name} is too large to open safely")
    except (OSError, ValueError, SyntaxError, struct.error) as error:  # Pillow's own text limits raise ValueError
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return RecipeCheck(problem=f"{name} cannot be read: {reason}")
    if text is None:
        return RecipeCheck()
    if not isinstance(text, str) or len(text) > MAX_RECIPE_CHARS:
        return RecipeCheck(problem=f"{name}: recipe chunk too large (at most {MAX_RECIPE_CHARS:,} characters)")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return RecipeCheck(problem=f"{name}: the recipe is not valid JSON")
    if not isinstance(data, dict) or "request" not in data:
        return RecipeCheck(problem=f"{name}: the recipe has no request")
    try:
        request = GenerationRequest.from_untrusted(data["request"])
    except ValueError as error:
        return RecipeCheck(problem=f"{name}: {error}")
    folders = [*default_user_folders(), path.parent, *(user_folders or [])]
    return RecipeCheck(request, outside=outside_paths(request, folders), copy_paste=_saved_score(data))


def _saved_score(data: dict) -> CopyPaste | None:
    """The copy-paste score in a recipe, when there is a well-formed one (a bad one never blocks the restore)."""
    try:
        return CopyPaste.from_untrusted(data["copy_paste"]) if "copy_paste" in data else None
    except ValueError:
        return None


def read_recipe(path: str | os.PathLike) -> GenerationRequest | None:
    """The request stored in a PNG written by ``save_png``; ``None`` for any other file, or a recipe that fails
    ``inspect_recipe``'s checks. Paths are returned as stored: ``inspect_recipe`` says which need confirmation."""
    return inspect_recipe(path).request


def default_user_folders() -> list[Path]:
    """Where a restored recipe's paths may point without asking: the home folder, the data folder (which may
    be elsewhere with ``$SQUEEZE_STUDIO_HOME``) and the temp folder."""
    from .hub.paths import user_data_dir

    return [Path.home(), user_data_dir(), Path(tempfile.gettempdir())]


def outside_paths(request: GenerationRequest, folders: list[str | os.PathLike]) -> list[str]:
    """The paths ``request`` names (references, a model or add-on folder, LoRA files; not a repo id or the demo)
    that are relative or lie outside every folder in ``folders``, symlinks and ``..`` resolved. Lexically outside paths
    are never touched on disk (a network path is not contacted)."""
    from .hub.source import DEMO_SPECS, looks_like_repo_id

    real = [_norm(os.path.realpath(Path(f).expanduser())) for f in folders]
    roots = (real, real + [_norm(os.path.abspath(Path(f).expanduser())) for f in folders])
    named = list(request.references)
    if request.model not in DEMO_SPECS and not looks_like_repo_id(request.model.partition("@")[0]):
        named.append(request.model)
    if request.addon:
        named.append(request.addon)
    named.extend(lora["path"] for lora in request.loras)
    return [p for p in named if not _inside(p, roots)]


def _norm(path: str) -> str:
    return os.path.normcase(os.path.normpath(path))


def _inside(path: str, roots: tuple[list[str], list[str]]) -> bool:
    """Inside one of the folders: lexically first (as written, or as the folders resolve), then with symlinks
    resolved, so a link inside the home folder that points to /etc counts as outside."""
    real, lexical_roots = roots
    if not os.path.isabs(path) or path.startswith(("\\\\", "//")):  # relative, or a network (UNC) path
        return False
    lexical = _norm(path)
    if not any(_under(lexical, root) for root in lexical_roots):
        return False
    return any(_under(_norm(os.path.realpath(lexical)), root) for root in real)


def _under(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives
        return False

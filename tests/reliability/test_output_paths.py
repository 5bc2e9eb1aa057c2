"""``squeeze generate --out``: bad output paths are refused before any work, and a save that fails late keeps the
result in the temp folder (the error line says where). ``--ref`` naming a folder says so."""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from squeeze_studio import recipe

from .helpers import generate_argv, one_error_line, squeeze_command


def refuse_before_work(monkeypatch):
    """Fail the test if the model starts loading: bad paths must be refused first."""
    import squeeze_studio.engine as engine

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the output path was checked")

    monkeypatch.setattr(engine.Engine, "__init__", no_load)


@pytest.mark.parametrize("case, message", [
    ("a folder", "--out is a folder: "),
    ("a path under a file", "is a file, not a folder"),
    ("not a png name", "--out must name a .png file"),
    ("a pipe", "--out exists and is not a regular file"),
])
def test_bad_output_paths_are_refused_before_any_work(case, message, squeeze, tiny_model_dir, reference_files,
                                                      tmp_path, monkeypatch):
    refuse_before_work(monkeypatch)
    (tmp_path / "a-file").write_text("keep me")
    (tmp_path / "a-folder").mkdir()
    os.mkfifo(tmp_path / "pipe.png")
    out = {"a folder": tmp_path / "a-folder", "a path under a file": tmp_path / "a-file" / "deeper" / "x.png",
           "not a png name": tmp_path / "result.jpg", "a pipe": tmp_path / "pipe.png"}[case]
    status, err = squeeze(generate_argv(tiny_model_dir, out, reference_files))
    assert status == 2 and message in one_error_line(err)
    assert (tmp_path / "a-file").read_text() == "keep me" and list((tmp_path / "a-folder").iterdir()) == []


def test_a_missing_output_folder_is_created(squeeze, tiny_model_dir, reference_files, tmp_path):
    out = tmp_path / "new" / "deeper" / "result.png"
    status, err = squeeze(generate_argv(tiny_model_dir, out, reference_files))
    assert status == 0, err
    assert recipe.read_recipe(out).instruction == "a toy on a beach"


@pytest.mark.parametrize("case, reason", [
    ("under a broken link", "a file or a broken link of that name is in the way"),
    ("a folder name too long", "File name too long"),
])
def test_an_output_folder_that_cannot_be_created_is_refused_before_any_work(case, reason, squeeze, tiny_model_dir,
                                                                            reference_files, tmp_path, monkeypatch):
    """The folder is created before the model loads: one that cannot be (a link to a missing folder on the way, a
    name over the filesystem's limit) is one line and exit 2, not a whole run that fails only at the save (the
    first existing folder above is writable, so the up-front checks alone let it through)."""
    refuse_before_work(monkeypatch)
    (tmp_path / "link").symlink_to(tmp_path / "missing" / "deeper")
    folder = {"under a broken link": tmp_path / "link", "a folder name too long": tmp_path / ("x" * 300)}[case]
    status, err = squeeze(generate_argv(tiny_model_dir, folder / "result.png", reference_files))
    assert status == 2
    assert one_error_line(err) == f"error: --out cannot be created: {folder} ({reason})"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link"]  # nothing made, the link left as it was


@pytest.mark.parametrize("failure", [errno.ENOSPC, errno.EACCES])
def test_a_late_save_failure_keeps_the_result_in_the_temp_folder(failure, squeeze, tiny_model_dir, reference_files,
                                                                  tmp_path, monkeypatch):
    """The disk fills up (or the folder turns read-only) during the run: the image is kept, the line says where."""
    out = tmp_path / "results" / "result.png"
    real_save = recipe.save_png

    def save(image, path, request, *more):
        if Path(path) == out:
            raise OSError(failure, os.strerror(failure))
        return real_save(image, path, request, *more)

    monkeypatch.setattr(recipe, "save_png", save)
    status, err = squeeze(generate_argv(tiny_model_dir, out, reference_files))
    line = one_error_line(err)
    assert status == 2
    assert line.startswith(f"error: cannot save {out} ({os.strerror(failure)}); the result was kept at ")
    kept = Path(line.rsplit(" kept at ", 1)[1])
    try:
        assert kept.parent == Path(tempfile.gettempdir())
        assert recipe.read_recipe(kept).instruction == "a toy on a beach"  # the whole result, recipe included
        with Image.open(kept) as image:
            assert image.size == (64, 64)
    finally:
        kept.unlink(missing_ok=True)
    assert not out.exists()


def test_save_png_leaves_nothing_behind_when_the_write_fails(tmp_path, monkeypatch):
    from squeeze_studio.request import GenerationRequest

    out = tmp_path / "result.png"
    out.write_bytes(b"an earlier result")

    def fail(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", fail)
    with pytest.raises(OSError):
        recipe.save_png(Image.new("RGB", (8, 8)), out, GenerationRequest(instruction="x"))
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"] and out.read_bytes() == b"an earlier result"


def test_a_reference_folder_is_named_as_a_folder(squeeze, tiny_model_dir, tmp_path):
    status, err = squeeze(generate_argv(tiny_model_dir, tmp_path / "o.png", [tmp_path]))
    assert status == 2 and one_error_line(err) == f"error: reference is a folder, not an image: {tmp_path}"


def test_the_installed_command_refuses_a_folder_as_out_in_one_line(tmp_path, tiny_model_dir, reference_files):
    proc = squeeze_command(generate_argv(tiny_model_dir, tmp_path, reference_files), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: --out is a folder: {tmp_path}; give a file name, e.g. "
                                   f"{tmp_path / 'result.png'}")


def _can_mount_a_small_filesystem(tmp_path) -> bool:
    import shutil
    import subprocess

    if not shutil.which("unshare"):
        return False
    probe = tmp_path / "probe"
    probe.mkdir()
    return subprocess.run(["unshare", "-Urm", "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                          capture_output=True).returncode == 0


@pytest.mark.slow  # the installed command or a real small filesystem: seconds of start-up each
def test_a_really_full_disk_keeps_the_result(tmp_path, tiny_model_dir, reference_files):
    """A real 64 kB filesystem, filled before the save (user + mount namespace, no privileges needed): the
    installed command says where the result went, and nothing else on the full disk is touched."""
    import shlex
    import subprocess
    import sys

    if not _can_mount_a_small_filesystem(tmp_path):
        pytest.skip("cannot mount a small tmpfs here (no unshare or no user namespaces)")
    small = tmp_path / "small"
    small.mkdir()
    argv = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "squeeze_studio.cli",
                                              *generate_argv(tiny_model_dir, small / "result.png", reference_files)])
    script = (f"mount -t tmpfs -o size=64k tmpfs {small} && head -c 60000 /dev/zero > {small}/earlier.bin && "
              f"{argv}; status=$?; ls -a {small}; exit $status")
    proc = subprocess.run(["unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    line = one_error_line(proc.stderr)
    assert proc.returncode == 2
    assert line.startswith(f"error: cannot save {small / 'result.png'} (No space left on device); the result was "
                           f"kept at ")
    kept = Path(line.rsplit(" kept at ", 1)[1])
    try:
        assert recipe.read_recipe(kept).instruction == "a toy on a beach"
    finally:
        kept.unlink(missing_ok=True)
    assert sorted(proc.stdout.split()) == [".", "..", "earlier.bin"]  # no partial file left on the full disk

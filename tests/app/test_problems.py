"""Problems reach the eye (issue 22, faults 4-5): too many or too large references are refused at drop time with
one clear line in the subjects panel; any generation failure, a too-long instruction and a result that could not be
saved stay in a banner in the panel concerned; Generate is disabled, with the reason as its tooltip, while it cannot
run."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

from PIL import Image

from squeeze_studio.app.model.reference_limits import reference_cap_of, training_reference_count

from .fake_engine import FakeEngineFactory
from .helpers import LONG, drop_files, prepare, real_engine_window

ROOT = Path(__file__).resolve().parents[2]


def huge_png(path: Path, side: int = 30_000) -> Path:
    """A valid 1-bit PNG of ``side`` x ``side`` pixels (900 megapixels at 30,000), written in about a second: each
    row is a filter byte and zeros, compressed as it goes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


class CappedFactory(FakeEngineFactory):
    """Fake engines that say they take ``cap`` references, as a real engine's backbone does."""

    def __init__(self, cap: int, **options):
        super().__init__(**options)
        self.cap = cap

    def __call__(self, *args, **kwargs):
        engine = super().__call__(*args, **kwargs)
        engine.max_references = self.cap
        return engine


def loaded_window(make_window, qtbot, factory):
    window = make_window(factory)
    window.studio.models.preload_model()
    qtbot.waitUntil(lambda: window.studio.models.loaded is not None, timeout=30_000)
    return window


def test_a_folder_of_1000_images_is_capped_at_the_models_reference_count(make_window, qtbot, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(1000):
        Image.new("RGB", (8, 8), (index % 256, 0, 0)).save(folder / f"img{index:04d}.png")
    window = loaded_window(make_window, qtbot, CappedFactory(3))
    drop_files(window.workspace.gallery.list.viewport(), [str(folder)])
    qtbot.waitUntil(lambda: window.studio.subjects.references() != [], timeout=LONG)
    assert window.studio.subjects.references() == [str(folder / f"img{i:04d}.png") for i in range(3)]
    banner = window.workspace.problems.text("subjects")
    assert "takes at most 3 references: added 3 of 1,000, left out 997" in banner


def test_the_cap_comes_from_the_loaded_model(make_window, qtbot, images):
    window = loaded_window(make_window, qtbot, CappedFactory(2))
    assert window.studio.models.reference_cap == 2
    drop_files(window.workspace.gallery.list.viewport(), images)
    assert window.studio.subjects.references() == images[:2]
    assert "takes at most 2 references" in window.workspace.problems.text("subjects")


def test_qwen_image_edit_takes_3_references_and_the_demo_model_2():
    """The backbone's count (Qwen-Image-Edit-2509: 1-3 input images), lowered to what a model was trained with
    (the demo model's ``training.json``: 1-2 references)."""
    from squeeze_studio.backbones.qwen_image import QwenImageAdapter

    stock = SimpleNamespace(pipe=SimpleNamespace(backbone=QwenImageAdapter), source=SimpleNamespace(folder=None))
    demo = SimpleNamespace(pipe=SimpleNamespace(backbone=QwenImageAdapter),
                           source=SimpleNamespace(folder=ROOT / "resources" / "demo-model"))
    assert reference_cap_of(stock) == 3
    assert training_reference_count(ROOT / "resources" / "demo-model") == 2
    assert reference_cap_of(demo) == 2


def test_a_subject_over_the_cap_disables_generate_with_the_reason(make_window, qtbot, images):
    window = loaded_window(make_window, qtbot, CappedFactory(2))
    window.studio.subjects.add_images(images)  # e.g. restored from a session made with another model
    window.workspace.editor.setPlainText("the toy on a beach")
    button = window.workspace.generate_button
    assert not button.isEnabled()
    assert "takes at most 2 references; this subject has 3" in button.toolTip()
    assert not window.studio.generate()


def test_generate_is_disabled_with_a_tooltip_while_the_instruction_is_empty(make_window, images):
    window = make_window()
    window.studio.subjects.add_images(images[:1])
    button = window.workspace.generate_button
    window.workspace.editor.setPlainText("")
    assert not button.isEnabled() and button.toolTip() == "Write an instruction first."
    window.workspace.editor.setPlainText("the toy on a beach")
    assert button.isEnabled() and "Ctrl+Enter" in button.toolTip()


def test_a_30000_by_30000_png_is_refused_once_clearly_at_drop_time(make_window, qtbot, images, tmp_path):
    big = huge_png(tmp_path / "huge.png")
    window = make_window()
    drop_files(window.workspace.gallery.list.viewport(), [images[0], str(big)])
    qtbot.waitUntil(lambda: window.studio.subjects.references() != [], timeout=LONG)
    assert window.studio.subjects.references() == [images[0]]
    banner = window.workspace.problems.text("subjects")
    assert banner == ("Added 1 image to Subject 1. Too large to use as a reference (at most 89 megapixels): "
                      "huge.png (30,000 × 30,000)")
    assert banner.count("huge.png") == 1


def test_any_generation_failure_stays_in_a_banner_on_the_canvas(make_window, qtbot, images):
    factory = FakeEngineFactory()
    window = loaded_window(make_window, qtbot, factory)
    prepare(window, images[:1])
    line = "The size of tensor a (12909) must match the size of tensor b (4092) at non-singleton dimension 1"

    def broken(*_args, **_kwargs):
        raise RuntimeError(line)

    factory.engine.generate = broken
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.generate()
    banner = window.workspace.problems.banners["run"]
    assert banner.isVisible() and banner.text() == line
    qtbot.wait(50)
    assert banner.isVisible()  # stays: not a status-bar line gone in ten seconds
    assert window.workspace.generate_button.isEnabled()  # and the next run can start (which clears it)
    factory.engine.generate = type(factory.engine).generate.__get__(factory.engine)
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.generate()
    assert not banner.isVisible()


def test_a_too_long_instruction_is_refused_next_to_the_field(make_window, qtbot, tiny_model, images):
    window = real_engine_window(make_window, tiny_model)
    text = ("the toy on a beach at sunset, " * 400)[:10_008]
    prepare(window, images[:1], instruction=text, steps=2)
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.generate()
    banner = window.workspace.problems.banners["instruction"]
    assert banner.isVisible()
    assert banner.text().startswith("the instruction is too long") and "1,024 tokens" in banner.text()
    assert window.workspace.editor.toPlainText() == text  # the work is kept
    window.workspace.editor.setPlainText("the toy on a beach")
    assert not banner.isVisible()  # edited: the refusal is gone


def test_a_result_that_could_not_be_saved_is_said_in_full(make_window, qtbot, images, tmp_path):
    """The save error used to be cut off by the model label in the status bar."""
    blocked = tmp_path / "a-file-not-a-folder"
    blocked.write_text("")
    window = make_window()
    window.set_results_folder(str(blocked / "results"))
    prepare(window, images[:1], steps=2)
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.generate()
    qtbot.waitUntil(lambda: bool(window.studio.outputs.unsaved), timeout=30_000)
    banner = window.workspace.problems.banners["run"]
    assert banner.isVisible() and banner.label.wordWrap()
    assert banner.text().startswith(f"Could not save to {blocked / 'results'}")
    assert banner.text().endswith("use File > Save result as…")

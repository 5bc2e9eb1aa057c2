"""Seen on screen (issue 22, items 3, 4 and 10): a cancel says where it stopped, the welcome panel gives its room back
after the first result and Help > Welcome brings it back, and a Help menu lists every keyboard shortcut."""
from __future__ import annotations

from .fake_engine import FakeEngineFactory
from .helpers import LONG, prepare, wait_until_paused


def test_cancel_says_at_which_step_it_stopped(make_window, qtbot, images):
    factory = FakeEngineFactory(pause_after_step=3)
    window = make_window(factory)
    prepare(window, images[:1], steps=10)
    window.studio.generate()
    wait_until_paused(qtbot, factory)
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.cancel()
    assert window.last_message == "Cancelled at step 3 of 10; finished images were kept"
    assert window.workspace.canvas.caption.text() == "Cancelled at step 3 of 10"


def test_a_new_run_does_not_keep_the_last_results_caption(make_window, qtbot, images):
    factory = FakeEngineFactory(pause_after_step=1)
    window = make_window(factory)
    prepare(window, images[:1], steps=3)
    window.workspace.canvas.caption.setText("seed 1 · 0.1 s")
    window.studio.generate()
    assert window.workspace.canvas.caption.text() == "Starting…"
    wait_until_paused(qtbot, factory)
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.cancel()


def test_the_welcome_panel_folds_to_one_line_after_the_first_result_and_help_opens_it(make_window, qtbot, images):
    window = make_window()
    window.first_start(load_sample=False)
    assert window.welcome is not None and window.welcome.isVisible()
    prepare(window, images[:1], steps=2)
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.generate()
    welcome = window.welcome
    line = welcome.fontMetrics().height()
    assert welcome.isVisible() and welcome.collapsed  # a one-line banner, not gone
    assert welcome.height() <= 3 * line and not welcome.text.isVisible()
    assert "Help > Welcome" in window.last_message
    window.help_actions["Welcome"].trigger()
    assert welcome.isVisible() and not welcome.collapsed and welcome.text.isVisible()
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.generate()  # opened again by hand: it folds again after the next result
    assert welcome.collapsed
    welcome.expand_button.click()  # its own Show opens it too
    assert welcome.text.isVisible()


def test_the_help_menu_lists_the_shortcuts(make_window):
    from squeeze_studio.app.ui.help_menu import shortcut_lines, show_shortcuts

    window = make_window()
    assert set(window.help_actions) == {"Welcome", "Keyboard shortcuts", "Documentation", "About Squeeze Studio"}
    lines = shortcut_lines(window)
    assert any(line.endswith("\tGenerate") and "Ctrl+Return" in line for line in lines)
    assert any(line.endswith("\tModels…") for line in lines)
    box = show_shortcuts(window)
    assert "Generate" in box.text()
    box.close()

"""The job queue through the window (issue 25, item 1): Ctrl+Enter while a job runs queues a frozen request; the
panel reorders, duplicates, removes, pauses and resumes; the queue comes back after a restart, paused, with the
interrupted job first. A pausing fake engine holds the first job so the test decides when it ends."""
from __future__ import annotations

import json
import os
import signal

import pytest
from PySide6.QtCore import Qt

from squeeze_studio.app.model.problems import SUBJECTS
from squeeze_studio.app.persistence.queue_file import flush as flush_queue

from .fake_engine import FakeEngineFactory
from .helpers import LONG, prepare, wait_until_paused
from .test_faults import check_data_folder, read_event, run_driver


def instructions_run(studio) -> list[str]:
    return [record.request.instruction for record in reversed(studio.history.records)]


def start_held_job(make_window, qtbot, images):
    """A window whose first job ("first") waits after its first step until the test lets it go."""
    factory = FakeEngineFactory(pause_after_step=1)
    window = make_window(factory)
    prepare(window, images[:1], instruction="first", steps=2)
    assert window.studio.generate()
    wait_until_paused(qtbot, factory)
    return window, factory


def queue_instruction(window, qtbot, text: str) -> None:
    window.workspace.editor.setPlainText(text)
    qtbot.keyClick(window.workspace.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)


def test_ctrl_enter_while_running_queues_the_settings_as_they_were(make_window, qtbot, images, studio_home):
    window, factory = start_held_job(make_window, qtbot, images)
    studio, workspace = window.studio, window.workspace
    assert workspace.generate_button.isEnabled() and workspace.generate_button.text() == "Queue"
    assert not workspace.sweep_button.isEnabled()
    studio.subjects.add_images(images[1:2])
    studio.controls.set("tau1", 0.9)
    queue_instruction(window, qtbot, "second")
    [queued] = studio.queue.waiting
    assert window.last_message == "Queued: 1 job waiting"
    studio.controls.set("tau1", 0.5)  # edits after queueing leave the queued job as it was
    window.workspace.editor.setPlainText("edited later")
    assert (queued.request.instruction, queued.request.references, queued.request.tau1) == ("second", images[:2], 0.9)
    assert workspace.queue_panel.isVisible() and workspace.queue_panel.list.count() == 2
    qtbot.waitUntil(lambda: window.windowTitle() == "50 % · 1 queued — Squeeze Studio", timeout=LONG)  # step 1 of 2
    flush_queue()  # the writer thread has it on disk a moment later
    saved = json.loads((studio_home / "queue.json").read_text())
    assert [job["request"]["instruction"] for job in saved["jobs"]] == ["first", "second"]

    factory.engine.resume.set()
    qtbot.waitUntil(lambda: len(studio.history.records) == 2 and not studio.busy, timeout=LONG)
    assert instructions_run(studio) == ["first", "second"]
    assert studio.history.records[0].request.references == images[:2]
    assert studio.queue.jobs == [] and not workspace.queue_panel.isVisible()
    assert window.windowTitle() == "Squeeze Studio"
    flush_queue()
    assert json.loads((studio_home / "queue.json").read_text())["jobs"] == []


def test_the_panel_reorders_duplicates_removes_and_pauses_the_queue(make_window, qtbot, images):
    window, factory = start_held_job(make_window, qtbot, images)
    studio, panel = window.studio, window.workspace.queue_panel
    for text in ("a", "b", "c"):
        queue_instruction(window, qtbot, text)
    panel.list.setCurrentRow(3)  # "c" (row 0 is the running job)
    panel.up.click()
    assert [job.request.instruction for job in studio.queue.waiting] == ["a", "c", "b"]
    panel.list.setCurrentRow(1)
    panel.duplicate.click()
    panel.list.setCurrentRow(4)  # "b"
    qtbot.keyClick(panel.list, Qt.Key.Key_Delete)
    assert [job.request.instruction for job in studio.queue.waiting] == ["a", "a", "c"]
    panel.pause.click()
    assert studio.queue.paused and panel.pause.text() == "Resume" and "(paused)" in window.windowTitle()

    factory.engine.resume.set()
    qtbot.waitUntil(lambda: not studio.busy, timeout=LONG)
    qtbot.wait(50)
    assert instructions_run(studio) == ["first"]  # paused: the running job finished, the rest waits
    panel.pause.click()
    qtbot.waitUntil(lambda: len(studio.history.records) == 4 and not studio.busy, timeout=LONG)
    assert instructions_run(studio) == ["first", "a", "a", "c"]


def test_a_failed_job_pauses_the_rest_of_the_queue(make_window, qtbot, images, tmp_path):
    window, factory = start_held_job(make_window, qtbot, images)
    studio = window.studio
    doomed = tmp_path / "doomed.png"
    doomed.write_bytes(open(images[1], "rb").read())
    studio.subjects.add_images([str(doomed)])
    queue_instruction(window, qtbot, "fails")
    studio.subjects.remove_image(1)
    queue_instruction(window, qtbot, "waits")
    doomed.unlink()  # the queued job keeps its reference list, which now names a file that is gone
    factory.engine.resume.set()
    qtbot.waitUntil(lambda: studio.queue.paused and not studio.busy, timeout=LONG)
    assert "cannot read reference doomed.png" in window.workspace.problems.text(SUBJECTS)
    assert window.last_message == "The queue is paused after a failed job: Resume runs the rest"
    assert instructions_run(studio) == ["first"]
    assert [job.request.instruction for job in studio.queue.jobs] == ["waits"]


def test_a_restart_brings_the_queue_back_paused_with_the_interrupted_job_first(make_window, qtbot, images):
    window, _factory = start_held_job(make_window, qtbot, images)
    queue_instruction(window, qtbot, "second")
    window.close()  # quit mid-run: the running job is cancelled, and stays queued

    again = make_window(FakeEngineFactory())
    studio = again.studio
    assert [(job.request.instruction, job.running) for job in studio.queue.jobs] == [("first", False),
                                                                                     ("second", False)]
    assert studio.queue.paused and not studio.busy
    assert "2 queued jobs restored" in again.last_message
    assert again.workspace.queue_panel.isVisible() and again.workspace.queue_panel.pause.text() == "Resume"
    again.workspace.queue_panel.pause.click()
    qtbot.waitUntil(lambda: len(studio.history.records) == 2 and not studio.busy, timeout=LONG)
    assert instructions_run(studio) == ["first", "second"] and studio.queue.jobs == []


@pytest.mark.slow
def test_kill_9_loses_no_queued_job_and_no_finished_result(tmp_path, images):
    """The real app (demo model) queues four jobs and is killed -9 after its first result; the restart brings back
    every job without a result, paused, and runs them all once resumed."""
    home = tmp_path / "home"
    child = run_driver("queue", home, images[:2])
    events = [read_event(child) for _ in range(3)]
    assert [e["event"] for e in events] == ["restored", "work-saved", "queued"]
    queued = events[2]["seeds"]
    assert len(queued) == 4 and len(set(queued)) == 4
    first = read_event(child)
    assert first["event"] == "result"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    finished = [first["seed"]] + [json.loads(line)["seed"] for line in child.stdout.read().splitlines()
                                  if '"result"' in line]  # any said before the kill took effect

    again = run_driver("queue", home, images[:2])
    assert read_event(again)["event"] == "restored"
    restored = read_event(again)
    assert restored["event"] == "queue" and restored["paused"] is True
    assert set(queued) <= set(finished) | set(restored["seeds"])  # none lost (one may run twice: its PNG was out)
    assert restored["seeds"] == [seed for seed in queued if seed in restored["seeds"]]  # in the order queued
    results = [read_event(again) for _ in restored["seeds"]]
    assert [r["seed"] for r in results] == restored["seeds"]
    assert read_event(again)["event"] == "drained"
    assert again.wait(60) == 0
    check_data_folder(home, [r["path"] for r in results] + [first["path"]])
    assert json.loads((home / "queue.json").read_text())["jobs"] == []

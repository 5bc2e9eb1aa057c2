"""The stage controls in plain words (issue 22, seen on screen 9): "identity ↔ freedom" first, τ as the secondary
readout, "Reset to model defaults" instead of the paper-term line, a short tooltip."""
from __future__ import annotations

import re

from PySide6.QtWidgets import QAbstractButton, QLabel

from .helpers import LONG


def shown_texts(widget) -> list[str]:
    found = [*widget.findChildren(QLabel), *widget.findChildren(QAbstractButton)]
    return [w.text() for w in found if w.isVisible() and w.text()]


def test_the_stage_controls_speak_plain_words(make_window, qtbot):
    window = make_window()
    studio, panel = window.studio, window.workspace.controls_panel
    studio.models.preload_model()
    qtbot.waitUntil(lambda: studio.models.stage_defaults is not None, timeout=LONG)
    bar = panel.stage_bar
    words = bar.words()
    assert (words["left"], words["right"]) == ("◀ more identity", "more freedom ▶")  # the primary wording
    assert words["readout"] == "τ1 0.95 · τ2 0.85"  # τ is the secondary readout
    texts = " ".join(shown_texts(panel))
    assert "Reset to model defaults" in texts
    assert not re.search(r"paper|arXiv|MLLM|VAE", texts), texts  # no paper terms in the panel
    tip = re.sub(r"<[^>]+>", "", bar.toolTip().replace("<br>", "\n")).strip()
    assert len(tip.splitlines()) <= 4 and "identity" in tip.lower() and "freedom" in tip.lower()  # it had 12 lines

    studio.controls.set("tau1", 0.5)
    studio.controls.set("guidance_scale", 6.0)
    panel.defaults_button.click()
    assert [studio.controls.get(n) for n in ("tau1", "tau2", "guidance_scale")] == [0.95, 0.85, 2.5]
    assert "τ1 0.95 / τ2 0.85, guidance 2.5" in panel.defaults_button.toolTip()

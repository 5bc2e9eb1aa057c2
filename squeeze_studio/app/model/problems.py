"""Where a problem is shown: the panel it concerns (``Studio.problem``'s first argument; ``ui/banner.py``)."""
from __future__ import annotations

SUBJECTS = "subjects"        # a refused drop, too many references, a reference gone
INSTRUCTION = "instruction"  # empty, too long, a reserved token
RUN = "run"                  # a generation or model load that failed, a result that could not be saved
HISTORY = "history"          # the history database could not be used or updated
AREAS = (SUBJECTS, INSTRUCTION, RUN, HISTORY)


def area_of_failure(text: str) -> str:
    """The panel a worker's one-line failure belongs to: the instruction's own refusals go next to it."""
    lowered = text.lower()
    if lowered.startswith(("the instruction", "the negative prompt")):
        return INSTRUCTION
    if "reference" in lowered and "out of memory" not in lowered:
        return SUBJECTS
    return RUN


def why_not_ready(studio, queueing: bool = False) -> str:
    """Why Generate (``queueing``: queue while a job runs) or Sweep cannot run now ("" when it can): the button's
    tooltip while it is disabled."""
    from .reference_limits import too_many

    if studio.busy and not queueing:
        return "A generation is running: Esc cancels it"
    if not studio.controls.get("instruction").strip():
        return "Write an instruction first"
    models = studio.models
    return too_many(len(studio.subjects.references()), models.reference_cap, models.model_name or "This model")

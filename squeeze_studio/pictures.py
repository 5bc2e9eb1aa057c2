"""Several subjects in one image: which "Picture N" of the joint MLLM prompt belongs to which subject.

The MLLM reads the references as "Picture 1: <image> … Picture N: <image>" before the instruction (``mllm``), as
Qwen-Image-Edit-2509 was trained to. A request whose references come from several subjects records them as
consecutive runs (``GenerationRequest.subjects``: ``[{"name": "dog", "count": 2}, {"name": "toy", "count": 1}]``
is Pictures 1-2 of the dog, then Picture 3 of the toy). ``name_pictures`` ties each subject's name in the
instruction to its pictures ("the dog (Pictures 1 and 2) plays with the toy (Picture 3)"), the way Qwen-Image-Edit's
own prompts name them, unless the instruction already names pictures itself (the window's subject chips insert
"Picture N"). Plain Python: the app imports it before torch.
"""
from __future__ import annotations

import re

PICTURE_MENTION = re.compile(r"\bpictures?\s+\d", re.IGNORECASE)


def picture_numbers(subjects: list[dict]) -> list[list[int]]:
    """The 1-based picture numbers of each subject, in order."""
    numbers, start = [], 1
    for subject in subjects:
        numbers.append(list(range(start, start + int(subject["count"]))))
        start += int(subject["count"])
    return numbers


def pictures_phrase(numbers: list[int]) -> str:
    """'Picture 3', 'Pictures 1 and 2', 'Pictures 1, 2 and 3'."""
    if len(numbers) == 1:
        return f"Picture {numbers[0]}"
    return "Pictures " + ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"


def name_pictures(instruction: str, subjects: list[dict]) -> str:
    """``instruction`` with the first mention of each subject's name followed by its pictures, when the references
    come from two or more subjects and the instruction does not name pictures already; otherwise unchanged."""
    if len(subjects) < 2 or PICTURE_MENTION.search(instruction):
        return instruction
    for subject, numbers in zip(subjects, picture_numbers(subjects), strict=True):
        name = str(subject.get("name", "")).strip()
        if not name:
            continue
        pattern = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE)
        phrase = pictures_phrase(numbers)
        instruction = pattern.sub(lambda match, phrase=phrase: f"{match.group(0)} ({phrase})", instruction, count=1)
    return instruction


def subject_legend(subjects: list[dict]) -> str:
    """One line for a caption or a recipe: 'dog: Pictures 1 and 2 · toy: Picture 3'."""
    return " · ".join(f"{subject['name']}: {pictures_phrase(numbers)}"
                      for subject, numbers in zip(subjects, picture_numbers(subjects), strict=True))


def split_by_subject(references: list[str], subjects: list[dict]) -> list[tuple[str, list[str]]]:
    """``(name, references)`` per subject; one unnamed group when ``subjects`` is empty."""
    if not subjects:
        return [("", list(references))]
    groups, start = [], 0
    for subject in subjects:
        groups.append((str(subject["name"]), list(references[start:start + int(subject["count"])])))
        start += int(subject["count"])
    return groups

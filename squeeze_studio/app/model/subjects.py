"""Subjects: named lists of reference images. The references of a generation are the current subject's images,
then those of up to two more subjects the user put "in this image" (``set_in_image``), in gallery order: each
subject's pictures are numbered in that order ("Picture 1" …, ``squeeze_studio.pictures``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

MAX_SUBJECTS_IN_IMAGE = 3  # Qwen-Image-Edit-2509 reads up to three pictures well


@dataclass
class Subject:
    name: str
    images: list[str] = field(default_factory=list)


class SubjectList(QObject):
    changed = Signal()           # subjects added, removed or renamed, or images of any subject changed
    current_changed = Signal(int)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._subjects: list[Subject] = [Subject("Subject 1")]
        self._current = 0
        self._joined: list[int] = []  # other subjects in the next image besides the current one

    # --- reading -----------------------------------------------------------------------------
    @property
    def subjects(self) -> list[Subject]:
        return list(self._subjects)

    @property
    def current_index(self) -> int:
        return self._current

    @property
    def current(self) -> Subject:
        return self._subjects[self._current]

    def image_subjects(self) -> list[int]:
        """The indices of the subjects in the next image, in gallery order (the current one always among them)."""
        return sorted({self._current, *self._joined})

    def in_image(self, index: int) -> bool:
        return index in self.image_subjects()

    def set_in_image(self, index: int, on: bool) -> bool:
        """Put subject ``index`` in the next image with the current one (or take it out); False when that would
        pass ``MAX_SUBJECTS_IN_IMAGE`` or ``index`` is the current subject (always in)."""
        if index == self._current or not 0 <= index < len(self._subjects):
            return False
        if on and index not in self._joined:
            if len(self.image_subjects()) >= MAX_SUBJECTS_IN_IMAGE:
                return False
            self._joined.append(index)
        elif not on and index in self._joined:
            self._joined.remove(index)
        else:
            return True
        self.changed.emit()
        return True

    def references(self) -> list[str]:
        """Every reference of the next image: each subject in it, in gallery order."""
        return [path for index in self.image_subjects() for path in self._subjects[index].images]

    def request_subjects(self) -> list[dict]:
        """``GenerationRequest.subjects``: [] for one subject, else each subject in the image that has images."""
        shown = [self._subjects[i] for i in self.image_subjects() if self._subjects[i].images]
        return [{"name": s.name, "count": len(s.images)} for s in shown] if len(shown) > 1 else []

    def restore_image_subjects(self, groups: list[tuple[str, list[str]]]) -> None:
        """A dropped recipe's subjects (``pictures.split_by_subject``): each group becomes a subject (an existing
        one with the same name and images is reused), the first current and the others in the image."""
        indices = []
        for name, images in groups[:MAX_SUBJECTS_IN_IMAGE]:
            found = next((i for i, s in enumerate(self._subjects) if s.name == name and s.images == images), None)
            if found is None:
                taken = {s.name for s in self._subjects}
                self._subjects.append(Subject(name if name and name not in taken else self._unused_name(), images))
                found = len(self._subjects) - 1
            indices.append(found)
        self._current, self._joined = indices[0], indices[1:]
        self.changed.emit()
        self.current_changed.emit(self._current)

    # --- subjects ----------------------------------------------------------------------------
    def add_subject(self, name: str | None = None, images: list[str] | None = None) -> int:
        name = name or self._unused_name()
        self._subjects.append(Subject(name, list(images or [])))
        self.changed.emit()
        self.select(len(self._subjects) - 1)
        return self._current

    def remove_subject(self, index: int) -> None:
        if len(self._subjects) == 1:  # always keep one subject to drop images onto
            self._subjects[0] = Subject(self._subjects[0].name)
        else:
            del self._subjects[index]
            self._current = min(self._current, len(self._subjects) - 1)
            shifted = [i - (i > index) for i in self._joined if i != index]  # the ones after it move up one
            self._joined = [i for i in shifted if i != self._current]
        self.changed.emit()
        self.current_changed.emit(self._current)

    def rename(self, index: int, name: str) -> None:
        name = name.strip()
        if name and name != self._subjects[index].name:
            self._subjects[index].name = name
            self.changed.emit()

    def select(self, index: int) -> None:
        if 0 <= index < len(self._subjects) and index != self._current:
            if index in self._joined:  # the subject shown becomes the current one; the one it replaces stays in
                self._joined[self._joined.index(index)] = self._current
            self._current = index
            self.current_changed.emit(index)

    # --- images of the current subject --------------------------------------------------------
    def add_images(self, paths: list[str], index: int | None = None) -> list[str]:
        """Append ``paths`` the subject does not already have; returns those actually added."""
        subject = self._subjects[self._current if index is None else index]
        added = [path for path in dict.fromkeys(paths) if path not in subject.images]
        if added:
            subject.images.extend(added)
            self.changed.emit()
        return added

    def remove_image(self, position: int) -> None:
        del self.current.images[position]
        self.changed.emit()

    def move_image(self, source: int, target: int) -> None:
        images = self.current.images
        target = max(0, min(target, len(images) - 1))
        if source == target or not 0 <= source < len(images):
            return
        images.insert(target, images.pop(source))
        self.changed.emit()

    # --- session -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "subjects": [{"name": s.name, "images": list(s.images)} for s in self._subjects],
            "current_subject": self._current,
            "subjects_in_image": list(self._joined),
        }

    def load_dict(self, data: dict[str, Any]) -> None:
        subjects = [
            Subject(str(item.get("name") or f"Subject {i + 1}"), [str(p) for p in item.get("images", [])])
            for i, item in enumerate(data.get("subjects") or [])
            if isinstance(item, dict)
        ]
        self._subjects = subjects or [Subject("Subject 1")]
        self._current = min(max(int(data.get("current_subject", 0) or 0), 0), len(self._subjects) - 1)
        joined = [i for i in data.get("subjects_in_image") or [] if isinstance(i, int)]
        self._joined = [i for i in dict.fromkeys(joined) if 0 <= i < len(self._subjects) and i != self._current]
        self._joined = self._joined[:MAX_SUBJECTS_IN_IMAGE - 1]
        self.changed.emit()
        self.current_changed.emit(self._current)

    def _unused_name(self) -> str:
        names = {s.name for s in self._subjects}
        number = len(self._subjects) + 1
        while f"Subject {number}" in names:
            number += 1
        return f"Subject {number}"

"""Subjects: named lists of reference images. The current subject's images are the references."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal


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

    def references(self) -> list[str]:
        return list(self.current.images)

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
        self.changed.emit()
        self.current_changed.emit(self._current)

    def rename(self, index: int, name: str) -> None:
        name = name.strip()
        if name and name != self._subjects[index].name:
            self._subjects[index].name = name
            self.changed.emit()

    def select(self, index: int) -> None:
        if 0 <= index < len(self._subjects) and index != self._current:
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
        }

    def load_dict(self, data: dict[str, Any]) -> None:
        subjects = [
            Subject(str(item.get("name") or f"Subject {i + 1}"), [str(p) for p in item.get("images", [])])
            for i, item in enumerate(data.get("subjects") or [])
            if isinstance(item, dict)
        ]
        self._subjects = subjects or [Subject("Subject 1")]
        self._current = min(max(int(data.get("current_subject", 0) or 0), 0), len(self._subjects) - 1)
        self.changed.emit()
        self.current_changed.emit(self._current)

    def _unused_name(self) -> str:
        names = {s.name for s in self._subjects}
        number = len(self._subjects) + 1
        while f"Subject {number}" in names:
            number += 1
        return f"Subject {number}"

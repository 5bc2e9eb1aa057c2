"""Render the application icon's PNGs from its SVG with Qt's own SVG renderer (PySide6's QtSvg, no extra tool).

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/render_icons.py

Writes ``resources/icons/squeeze-studio-{16,22,24,32,48,64,128,256,512}.png`` (the hicolor sizes), plus
``squeeze-studio.ico`` (Windows) from the same renders. Deterministic for one Qt version.
"""
from __future__ import annotations

import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ICONS = ROOT / "resources" / "icons"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def render(svg: Path, size: int):
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"error: cannot read {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return image


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    svg = ICONS / "squeeze-studio.svg"
    pngs = {}
    for size in SIZES:
        out = ICONS / f"squeeze-studio-{size}.png"
        if not render(svg, size).save(str(out), "PNG"):
            raise SystemExit(f"error: cannot write {out}")
        pngs[size] = out
        print(out.relative_to(ROOT))
    # Windows: one .ico holding the common sizes (Pillow writes it from the largest render).
    largest = Image.open(io.BytesIO(pngs[256].read_bytes())).convert("RGBA")
    largest.save(ICONS / "squeeze-studio.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    print((ICONS / "squeeze-studio.ico").relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())

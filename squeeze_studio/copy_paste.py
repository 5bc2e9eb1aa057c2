"""How much a result is one of its references pasted back: a model-agnostic score with nothing to download.

For each reference: both images in grey at a fixed working size (the result's longest side ``WORK_SIDE`` px,
the reference at the same area, keeping its aspect ratio), the reference tried at each of ``SCALES``; at each
scale the shift with the best normalised cross-correlation (FFT, over every placement whose overlap covers at
least ``MIN_OVERLAP`` of the smaller image) is kept and scored: the SSIM of the two over that overlap (windows
weighted by their information, ``WEIGHTED``) times the overlap's share. The best scale gives the reference's
score, the best reference the result's. A reference moved a few pixels, resized a little, noised or re-lit
scores near 1; the same subject in another pose or place scores lower. ``THRESHOLD`` and the design were
chosen on one SynthSubjects split and checked on another against the eval's copy-paste label
(docs/copy-paste.md; ``python -m squeeze_studio.eval.copy_paste_check``).

Plain numpy and PIL: the engine calls it after every image, the window may call it too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

WORK_SIDE = 64  # px, the result's longest side while scoring: fixed, so one threshold serves every size
SCALES = (0.8, 0.89, 1.0, 1.12, 1.25)  # the reference's size relative to the result's area
MIN_OVERLAP = 0.5  # share of the smaller image an alignment must cover (the score is scaled by the share)
WINDOW = 7  # SSIM's square window, px at the working size
WEIGHTED = True  # windows weighted by their information content (Wang & Li 2011): flat areas count little
THRESHOLD = 0.72  # best F1 against the eval's label on a SynthSubjects split (docs/copy-paste.md)
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


@dataclass(frozen=True)
class CopyPaste:
    """``scores``: per reference, in order (higher = more pasted, at most 1); ``reference``: the index of the
    best; ``score``: its score; ``over``: whether it reaches ``threshold``."""

    scores: tuple[float, ...]
    reference: int
    score: float
    threshold: float

    @property
    def over(self) -> bool:
        return self.score >= self.threshold

    def to_dict(self) -> dict:
        """What the PNG recipe stores (``reference`` counts from 0)."""
        return {"score": round(self.score, 4), "reference": self.reference, "over_threshold": self.over,
                "threshold": self.threshold, "scores": [round(s, 4) for s in self.scores]}

    @classmethod
    def from_untrusted(cls, data) -> CopyPaste:
        """``to_dict``'s output read back from a file anyone may have made: ``ValueError`` unless every field
        has its type and range."""
        if not isinstance(data, dict):
            raise ValueError("the copy-paste score is not an object")
        scores, reference, threshold = data.get("scores"), data.get("reference"), data.get("threshold")
        if not isinstance(scores, list) or not 1 <= len(scores) <= 100 or not all(map(_unit, scores)):
            raise ValueError("the copy-paste scores are not a list of numbers between -1 and 1")
        if isinstance(reference, bool) or not isinstance(reference, int) or not 0 <= reference < len(scores):
            raise ValueError("the copy-paste reference is not one of the scored references")
        if not _unit(threshold):
            raise ValueError("the copy-paste threshold is not a number between -1 and 1")
        return cls(tuple(float(x) for x in scores), reference, float(scores[reference]), float(threshold))


def _unit(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and -1.0 <= x <= 1.0


def copy_paste(result: Image.Image, references: list[Image.Image], threshold: float = THRESHOLD) -> CopyPaste:
    """The score of ``result`` against each of ``references`` (PIL images of any size and mode)."""
    if not references:
        raise ValueError("copy-paste score needs at least one reference")
    target = _grey(result, _fit(result.size, result.size))
    area = target.shape[0] * target.shape[1]
    scores = tuple(reference_score(target, _shrunk(ref), area) for ref in references)
    best = int(np.argmax(scores))
    return CopyPaste(scores, best, scores[best], threshold)


def reference_score(target: np.ndarray, reference: Image.Image, area: int) -> float:
    """The best SSIM over ``SCALES`` of ``reference`` aligned onto ``target`` (grey float64 at working size)."""
    best = -1.0
    rw, rh = reference.size
    for scale in SCALES:
        side = np.sqrt(area / (rw * rh)) * scale
        size = (max(WINDOW, round(rw * side)), max(WINDOW, round(rh * side)))
        moved = _grey(reference, size)
        found = best_offset(target, moved, MIN_OVERLAP)
        if found is not None:
            dy, dx, share = found
            best = max(best, overlap_ssim(target, moved, dy, dx) * share)
    return best


def _fit(size: tuple[int, int], of: tuple[int, int]) -> tuple[int, int]:
    """``size`` (w, h) scaled so that ``of``'s longest side becomes ``WORK_SIDE``."""
    ratio = WORK_SIDE / max(of)
    return max(WINDOW, round(size[0] * ratio)), max(WINDOW, round(size[1] * ratio))


def _shrunk(image: Image.Image) -> Image.Image:
    """``image`` in grey, at most ``4 * WORK_SIDE`` px on its longest side (each scale is resized from this)."""
    grey = image.convert("L")
    ratio = 4 * WORK_SIDE / max(grey.size)
    if ratio >= 1:
        return grey
    return grey.resize((max(1, round(grey.width * ratio)), max(1, round(grey.height * ratio))), Image.BILINEAR,
                       reducing_gap=2.0)


def _grey(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(image.convert("L").resize(size, Image.BILINEAR, reducing_gap=2.0), dtype=np.float64)


def best_offset(a: np.ndarray, b: np.ndarray, min_share: float) -> tuple[int, int, float] | None:
    """(dy, dx, share) placing ``b``'s top-left corner at ``a[dy, dx]`` (may be negative) with the highest
    normalised cross-correlation over the overlap, among placements whose overlap covers at least ``min_share``
    of the smaller image; ``share`` is that placement's. None if no placement overlaps enough. Masked NCC
    (Padfield 2012): the cross term by one FFT correlation, the overlap sums by summed-area tables."""
    (ha, wa), (hb, wb) = a.shape, b.shape
    shape = (_fast_length(ha + hb - 1), _fast_length(wa + wb - 1))
    cross = np.fft.irfft2(np.fft.rfft2(a, shape) * np.conj(np.fft.rfft2(b, shape)), shape)
    dys, dxs = np.arange(-(hb - 1), ha), np.arange(-(wb - 1), wa)
    cross = cross[dys % shape[0]][:, dxs % shape[1]]  # sum over p of a[p + d] * b[p], every placement d
    ya0, ya1 = np.clip(dys, 0, ha), np.clip(dys + hb, 0, ha)  # the overlap's rows in a, then in b
    xa0, xa1 = np.clip(dxs, 0, wa), np.clip(dxs + wb, 0, wa)
    yb0, yb1, xb0, xb1 = ya0 - dys, ya1 - dys, xa0 - dxs, xa1 - dxs
    n = np.outer(ya1 - ya0, xa1 - xa0).astype(np.float64)
    smaller = min(a.size, b.size)
    sa, sa2 = (_rect_sums(t, ya0, ya1, xa0, xa1) for t in (a, a * a))
    sb, sb2 = (_rect_sums(t, yb0, yb1, xb0, xb1) for t in (b, b * b))
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = cross - sa * sb / n
        var = (sa2 - sa * sa / n) * (sb2 - sb * sb / n)
        ncc = np.where((n >= min_share * smaller) & (var > 1e-6 * n * n), cov / np.sqrt(np.maximum(var, 1e-12)),
                       -np.inf)
    if not np.isfinite(ncc).any():
        return None
    y, x = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
    return int(dys[y]), int(dxs[x]), float(n[y, x] / smaller)


def _rect_sums(x: np.ndarray, y0: np.ndarray, y1: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """Sums of ``x`` over every rectangle [y0[i]:y1[i], x0[j]:x1[j]]: (len(y0), len(x0))."""
    s = np.pad(x, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return s[y1][:, x1] - s[y0][:, x1] - s[y1][:, x0] + s[y0][:, x0]


def _fast_length(n: int) -> int:
    """The smallest length >= n with no prime factor above 5 (quick FFT sizes)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def overlap_ssim(a: np.ndarray, b: np.ndarray, dy: int, dx: int) -> float:
    """Mean SSIM (``WINDOW`` x ``WINDOW`` uniform windows inside the overlap) of ``a`` and ``b`` placed at
    (dy, dx); -1 when the overlap is smaller than a window."""
    y0, y1 = max(0, dy), min(a.shape[0], dy + b.shape[0])
    x0, x1 = max(0, dx), min(a.shape[1], dx + b.shape[1])
    if y1 - y0 < WINDOW or x1 - x0 < WINDOW:
        return -1.0
    x, y = a[y0:y1, x0:x1], b[y0 - dy : y1 - dy, x0 - dx : x1 - dx]
    mx, my = _box(x), _box(y)
    vx, vy, cxy = _box(x * x) - mx * mx, _box(y * y) - my * my, _box(x * y) - mx * my
    ssim = ((2 * mx * my + _C1) * (2 * cxy + _C2)) / ((mx * mx + my * my + _C1) * (vx + vy + _C2))
    if not WEIGHTED:
        return float(ssim.mean())
    weight = np.log1p(np.maximum(vx, 0) / _C2) + np.log1p(np.maximum(vy, 0) / _C2)
    total = weight.sum()
    return float((ssim * weight).sum() / total) if total > 1e-9 else float(ssim.mean())


def _box(x: np.ndarray) -> np.ndarray:
    """Means over every ``WINDOW`` x ``WINDOW`` window fully inside ``x`` (summed-area table)."""
    s = np.pad(x, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    k = WINDOW
    return (s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k]) / (k * k)

"""Metrics against exact targets, and detectors that read scene attributes back from pixels.

Conventions: images are (H, W, 3) uint8, masks (H, W) bool. Detectors work on any image (a model's
output or a rendered target): the background is estimated from the border ring, the foreground is what
differs from it, and the attribute is read from the foreground with the renderer's own layout rules.
Orientation and style need the subject: the candidates are rendered at the detected place and size
and the best match wins.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .palette import classification_table
from .scene import ORIENTATIONS, POSITIONS, SCALES, STYLES, Attributes, group_centre, render_sprite
from .subjects import Subject

# ---------------------------------------------------------------------------------------------------
# Pixel fidelity


def psnr(image: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of ``image`` against ``target`` (both (H, W, 3) uint8), over ``mask`` if given.

    Identical pixels give ``inf``; an empty mask gives ``nan``.
    """
    diff = image.astype(np.float64) - target.astype(np.float64)
    sq = (diff**2).mean(axis=-1)
    if mask is not None:
        if not mask.any():
            return float("nan")
        sq = sq[mask]
    mse = float(sq.mean())
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def subject_psnr(image: np.ndarray, target: np.ndarray, target_mask: np.ndarray) -> float:
    """PSNR over the target's subject pixels only."""
    return psnr(image, target, target_mask)


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1), end-exclusive, of the True pixels of a (H, W) mask; None when empty."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def _resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of (h, w, 3) uint8 or (h, w) bool to (height, width)."""
    if array.dtype == bool:
        im = Image.fromarray(array.astype(np.uint8) * 255, "L").resize((width, height), Image.BILINEAR)
        return np.asarray(im) > 127
    return np.asarray(Image.fromarray(array).resize((width, height), Image.BILINEAR))


def aligned_subject_psnr(
    image: np.ndarray, target: np.ndarray, target_mask: np.ndarray, tolerance: int = 2
) -> float:
    """Identity fidelity that forgives placement: the foreground box found in ``image`` is moved onto
    the target mask's box, then compared with the target on its mask (PSNR, dB). When the box sizes
    agree within ``tolerance`` px the move is a pure shift (the best within 1 px of centre on centre,
    since anti-aliased edges blur the box by a pixel); otherwise the box is resized.

    With no foreground found the image is compared where the target is, unaligned.
    """
    tbox = bbox(target_mask)
    if tbox is None:
        return float("nan")
    ty0, ty1, tx0, tx1 = tbox
    th, tw = ty1 - ty0, tx1 - tx0
    want, where = target[ty0:ty1, tx0:tx1], target_mask[ty0:ty1, tx0:tx1]
    gbox = bbox(foreground_mask(image))
    if gbox is None:
        return psnr(image[ty0:ty1, tx0:tx1], want, where)
    gy0, gy1, gx0, gx1 = gbox
    if abs((gy1 - gy0) - th) > tolerance or abs((gx1 - gx0) - tw) > tolerance:
        return psnr(_resize(image[gy0:gy1, gx0:gx1], th, tw), want, where)
    cy, cx = int(math.floor((gy0 + gy1 - th) / 2)), int(math.floor((gx0 + gx1 - tw) / 2))
    best = -math.inf
    for y0 in range(cy - 1, cy + 2):
        for x0 in range(cx - 1, cx + 2):
            if 0 <= y0 <= image.shape[0] - th and 0 <= x0 <= image.shape[1] - tw:
                best = max(best, psnr(image[y0 : y0 + th, x0 : x0 + tw], want, where))
    return best


# ---------------------------------------------------------------------------------------------------
# Background and foreground


@dataclass(frozen=True)
class Background:
    """What the border ring shows: colour name, pattern, and the observed colours (k, 3) float."""

    name: str
    pattern: str
    colours: np.ndarray


def _border(image: np.ndarray) -> tuple[np.ndarray, ...]:
    return image[0], image[-1], image[:, 0], image[:, -1]  # top, bottom, left, right: (n, 3) each


def estimate_background(image: np.ndarray) -> Background:
    """Read the background's colour name and pattern from the outermost pixel ring of (H, W, 3).

    Each border pixel is classified to the nearest named colour or shade; the majority name wins.
    Stripes run horizontally, so a striped background alternates along the left and right edges only,
    a checkered one along every edge.
    """
    table, names, is_shade = classification_table()
    sides = [s.astype(np.float64) for s in _border(image)]
    classes = [np.linalg.norm(s[:, None, :] - table[None], axis=-1).argmin(axis=1) for s in sides]
    flat = np.concatenate(classes)
    votes: dict[str, int] = {}
    for k in flat:
        votes[names[k]] = votes.get(names[k], 0) + 1
    name = max(votes, key=votes.get)

    def shade_share(side: np.ndarray) -> float:
        mine = [k for k in side if names[k] == name]
        return sum(is_shade[k] for k in mine) / max(1, len(mine))

    def alternates(side: np.ndarray) -> bool:
        return 0.2 < shade_share(side) < 0.8

    top, bottom, left, right = classes
    if alternates(top) and alternates(bottom):
        pattern = "checkered"
    elif alternates(left) and alternates(right):
        pattern = "striped"
    else:
        pattern = "plain"
    pixels = np.concatenate(sides)
    colours = []
    for shade_flag in (False, True):
        sel = np.array([names[k] == name and is_shade[k] == shade_flag for k in flat])
        if sel.sum() >= 2:
            colours.append(pixels[sel].mean(axis=0))
    if not colours:
        colours.append(np.median(pixels, axis=0))
    return Background(name, pattern, np.stack(colours))


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a (H, W) bool mask: labels (H, W) int32 (0 = background) and their count.

    Works on horizontal runs with a union-find, so it stays quick in pure numpy + Python.
    """
    runs: list[tuple[int, int, int]] = []  # (row, start, end) with end exclusive
    row_runs: list[list[int]] = []
    for r in range(mask.shape[0]):
        d = np.diff(np.concatenate(([0], mask[r].astype(np.int8), [0])))
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        row_runs.append(list(range(len(runs), len(runs) + len(starts))))
        runs += [(r, int(s), int(e)) for s, e in zip(starts, ends, strict=True)]
    parent = list(range(len(runs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for r in range(1, mask.shape[0]):
        for i in row_runs[r]:
            _, s1, e1 = runs[i]
            for j in row_runs[r - 1]:
                _, s2, e2 = runs[j]
                if s1 <= e2 and s2 <= e1:  # overlapping or diagonally touching
                    parent[find(i)] = find(j)
    labels = np.zeros(mask.shape, dtype=np.int32)
    ids: dict[int, int] = {}
    for i, (r, s, e) in enumerate(runs):
        labels[r, s:e] = ids.setdefault(find(i), len(ids) + 1)
    return labels, len(ids)


def foreground_mask(
    image: np.ndarray, background: Background | None = None, threshold: float = 50.0
) -> np.ndarray:
    """(H, W) bool: pixels further than ``threshold`` (RGB distance) from every background colour,
    without specks (components smaller than 1/1000 of the image, at least 4 px)."""
    background = background or estimate_background(image)
    pixels = image.astype(np.float64)
    dist = np.min([np.linalg.norm(pixels - c, axis=-1) for c in background.colours], axis=0)
    mask = dist > threshold
    labels, n = label_components(mask)
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    keep = areas >= max(4, mask.size // 1000)
    keep[0] = False
    return keep[labels]


# ---------------------------------------------------------------------------------------------------
# Attribute detectors


@dataclass(frozen=True)
class Blob:
    """One connected piece of foreground: area in pixels and its (y0, y1, x0, x1) box."""

    area: int
    box: tuple[int, int, int, int]

    @property
    def side(self) -> int:
        y0, y1, x0, x1 = self.box
        return max(y1 - y0, x1 - x0)


def subject_blobs(mask: np.ndarray, min_share: float = 0.25) -> list[Blob]:
    """The copies of the subject in a foreground mask: components at least ``min_share`` of the largest
    one's area, largest first."""
    labels, n = label_components(mask)
    if n == 0:
        return []
    blobs = [Blob(int((labels == k).sum()), bbox(labels == k)) for k in range(1, n + 1)]
    largest = max(b.area for b in blobs)
    return sorted((b for b in blobs if b.area >= min_share * largest), key=lambda b: -b.area)


def detect_count(mask: np.ndarray) -> int:
    """Number of subject copies in a (H, W) foreground mask (0 when empty)."""
    return len(subject_blobs(mask))


def detect_scale(mask: np.ndarray) -> str | None:
    """"small" / "medium" / "large" from the median copy's longest side (the renderer's box side)."""
    blobs = subject_blobs(mask)
    if not blobs:
        return None
    side = float(np.median([b.side for b in blobs])) / mask.shape[1]
    return min(SCALES, key=lambda k: abs(math.log(side / SCALES[k])))


def detect_position(mask: np.ndarray) -> str | None:
    """The grid cell whose layout centre (at the detected scale and count) is nearest the centre of
    the copies' joint box."""
    blobs = subject_blobs(mask)
    if not blobs:
        return None
    y0 = min(b.box[0] for b in blobs)
    y1 = max(b.box[1] for b in blobs)
    x0 = min(b.box[2] for b in blobs)
    x1 = max(b.box[3] for b in blobs)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    size = mask.shape[1]
    scale, count = detect_scale(mask), min(len(blobs), 3)

    def dist(position: str) -> float:
        gx, gy = group_centre(position, scale, count, size)
        return (gx - cx) ** 2 + (gy - cy) ** 2

    return min(POSITIONS, key=dist)


def _sprite_crop(subject: Subject, height: int, width: int, orientation: str, style: str, colour) -> tuple:
    """The subject rendered to fill a (height, width) crop, as its own mask box would be resized."""
    image, mask = render_sprite(subject, max(height, width, 8), orientation, style, colour)
    y0, y1, x0, x1 = bbox(mask)
    return _resize(image[y0:y1, x0:x1], height, width), _resize(mask[y0:y1, x0:x1], height, width)


def _best_match(
    image: np.ndarray, mask: np.ndarray, subject: Subject, background: Background, variants: list[dict]
) -> int:
    """Index of the (orientation, style) variant that best matches the largest copy in ``image``."""
    blobs = subject_blobs(mask)
    y0, y1, x0, x1 = blobs[0].box
    crop, crop_mask = image[y0:y1, x0:x1].astype(np.float64), mask[y0:y1, x0:x1]
    colour = background.colours[0]
    errors = []
    for v in variants:
        cand, cand_mask = _sprite_crop(subject, y1 - y0, x1 - x0, v["orientation"], v["style"], colour)
        region = crop_mask | cand_mask
        errors.append(float(((crop - cand) ** 2).sum(axis=-1)[region].mean()))
    return int(np.argmin(errors))


def detect_orientation(
    image: np.ndarray, subject: Subject, style: str = "normal", mask: np.ndarray | None = None
) -> str | None:
    """The orientation whose rendering of ``subject`` best matches the largest copy in the image."""
    variants = [{"orientation": o, "style": style} for o in ORIENTATIONS]
    best = _best_variant(image, subject, mask, variants)
    return None if best is None else ORIENTATIONS[best]


def detect_style(
    image: np.ndarray, subject: Subject, orientation: str = "upright", mask: np.ndarray | None = None
) -> str | None:
    """The style ("normal" / "outlined" / "pastel") that best matches the largest copy."""
    variants = [{"orientation": orientation, "style": s} for s in STYLES]
    best = _best_variant(image, subject, mask, variants)
    return None if best is None else STYLES[best]


def _best_variant(image: np.ndarray, subject: Subject, mask: np.ndarray | None, variants: list[dict]) -> int | None:
    """Index of the best-matching variant for the largest copy; ``None`` when nothing is in the foreground."""
    background = estimate_background(image)
    mask = foreground_mask(image, background) if mask is None else mask
    if not mask.any():
        return None
    return _best_match(image, mask, subject, background, variants)


def read_attributes(image: np.ndarray, subject: Subject | None = None) -> dict:
    """Every attribute readable from (H, W, 3): background, bg_pattern, position, scale, count, and
    with the subject also orientation and style. Missing foreground gives None values."""
    background = estimate_background(image)
    mask = foreground_mask(image, background)
    out = {
        "background": background.name,
        "bg_pattern": background.pattern,
        "position": detect_position(mask),
        "scale": detect_scale(mask),
        "count": detect_count(mask) or None,
    }
    if subject is not None and mask.any():
        # The orientation is read in normal style (the shape decides it); the style then in that pose.
        variants = [{"orientation": o, "style": s} for o in ORIENTATIONS for s in STYLES]
        best = variants[_best_match(image, mask, subject, background, variants)]
        out.update(best)
    elif subject is not None:
        out.update(orientation=None, style=None)
    return out


def _value(attrs, key: str):
    return attrs.get(key) if isinstance(attrs, Mapping) else getattr(attrs, key)


def adherence(detected: Mapping, target: Attributes | Mapping, keys: Sequence[str] | None = None) -> dict:
    """Per attribute, whether the detected value equals the target's: {key: bool}.

    ``keys`` defaults to every key in ``detected``; pass the instructed keys to score only those.
    """
    keys = list(detected) if keys is None else list(keys)
    return {k: detected.get(k) == _value(target, k) for k in keys}


# ---------------------------------------------------------------------------------------------------
# Identity retrieval


def subject_crop(image: np.ndarray, mask: np.ndarray, px: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """The largest copy's box, resized to (px, px): crop (px, px, 3) uint8 and its mask (px, px) bool."""
    blobs = subject_blobs(mask)
    if not blobs:
        return np.zeros((px, px, 3), np.uint8), np.zeros((px, px), bool)
    y0, y1, x0, x1 = blobs[0].box
    return _resize(image[y0:y1, x0:x1], px, px), _resize(mask[y0:y1, x0:x1], px, px)


def subject_gallery(
    subjects: Sequence[Subject], orientation: str = "upright", style: str = "normal", px: int = 24
) -> np.ndarray:
    """Canonical crops of each subject, shaped like ``subject_crop``'s: (G, px, px, 3) uint8."""
    crops = []
    for s in subjects:
        image, mask = render_sprite(s, 2 * px, orientation, style, (128, 128, 128))
        crops.append(subject_crop(image, mask, px)[0])
    return np.stack(crops)


def retrieval_ranks(
    queries: np.ndarray, query_masks: np.ndarray, gallery: np.ndarray, true_index: Sequence[int]
) -> np.ndarray:
    """Rank of the true subject for each query (0 = retrieved first).

    queries (N, px, px, 3), query_masks (N, px, px), gallery (G, px, px, 3), true_index (N,).
    Distance: mean squared error over the query's own mask (the same pixels for every candidate).
    """
    q = queries.astype(np.float64)[:, None]
    g = gallery.astype(np.float64)[None]
    sq = ((q - g) ** 2).sum(axis=-1)  # (N, G, px, px)
    m = query_masks[:, None].astype(np.float64)
    dist = (sq * m).sum(axis=(2, 3)) / np.maximum(m.sum(axis=(2, 3)), 1)
    true = dist[np.arange(len(dist)), np.asarray(true_index)]
    return (dist < true[:, None]).sum(axis=1)


def retrieval_accuracy(ranks: np.ndarray, k: int = 1) -> float:
    """Share of queries whose true subject is among the first ``k``."""
    return float((np.asarray(ranks) < k).mean()) if len(ranks) else float("nan")


# ---------------------------------------------------------------------------------------------------
# Copy-paste


def is_copy_paste(
    detected: Mapping,
    target: Attributes | Mapping,
    references: Sequence[Attributes | Mapping],
    keys: Sequence[str] = ("position", "orientation"),
) -> bool | None:
    """Whether an output reproduces a reference's pose/placement instead of the instructed one.

    None when the example cannot tell (some reference already has the target's values on ``keys``).
    Otherwise True when, for some reference, the output shows that reference's value on every key
    where the reference and the target differ.
    """
    differing = [[k for k in keys if _value(r, k) != _value(target, k)] for r in references]
    if not references or any(not d for d in differing):
        return None
    pairs = zip(references, differing, strict=True)
    return any(all(detected.get(k) == _value(r, k) for k in d) for r, d in pairs)


def copy_paste_rate(
    detected: Sequence[Mapping],
    targets: Sequence[Attributes | Mapping],
    references: Sequence[Sequence[Attributes | Mapping]],
    keys: Sequence[str] = ("position", "orientation"),
) -> dict:
    """Share of copy-paste outputs among the examples that asked for a pose/placement different from
    every reference's: {"rate": float (nan if none eligible), "copies": int, "eligible": int}."""
    flags = [is_copy_paste(d, t, r, keys) for d, t, r in zip(detected, targets, references, strict=True)]
    eligible = [f for f in flags if f is not None]
    copies = sum(eligible)
    return {
        "rate": copies / len(eligible) if eligible else float("nan"),
        "copies": int(copies),
        "eligible": len(eligible),
    }

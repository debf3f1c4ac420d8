"""Greyscale frame → candidate digit regions, each with its own ink mask (pure).

The steps, each there for one thing a phone-quality camera does to paper:

1. Background normalisation: divide by a morphological closing of a 1/4-size copy, so
   shadows, light gradients and the colour cast's grey level all become "paper = 255".
2. Ink = pixels darker than that paper by ``min_contrast``; isolated pixels dropped.
3. Ruled and squared paper lines are cut out of the ink at whatever tilt the sheet has,
   and the strokes they crossed bridged again (``edge.lines``).
4. Outer contours (much cheaper than labelling), pieces of broken digits merged, then
   filters: specks, dashes and lines, solid blobs, things cut by the frame's edge.
5. Regions much wider than a digit are split into touching digits (``edge.split``).

Big frames are analysed at ``work_max_side``; boxes and masks come back in frame pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from edge.config import DetectConfig
from edge.lines import remove_lines
from edge.split import split_group
from edge.types import Box, GrayImage, Region

BG_FACTOR = 4  # the background is estimated on a 1/4-size image
FloatArray = npt.NDArray[np.float64]


def find_regions(gray: GrayImage, cfg: DetectConfig, alternatives: bool = False) -> list[Region]:
    """Candidate digit regions of ``gray`` (uint8, HxW), in no particular order.

    With ``alternatives`` a region that may be several touching digits comes back both
    whole and split (same ``Region.group``), for the classifier to choose between
    (``edge.split.pick_alternatives``); without it the split is decided by shape alone.
    """
    if gray.ndim != 2 or min(gray.shape) < 8:
        return []
    h0, w0 = gray.shape
    scale = min(1.0, cfg.work_max_side / max(h0, w0))
    work = gray
    if scale < 1.0:
        size = (max(8, round(w0 * scale)), max(8, round(h0 * scale)))
        work = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    ink, weak = ink_masks(work, cfg)
    if cfg.remove_lines:
        ink = remove_lines(ink, weak)
    contours, _ = cv2.findContours(ink, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    rects = np.array([cv2.boundingRect(c) for c in contours], np.float64).reshape(-1, 4)
    regions: list[Region] = []
    for ids in _group_pieces(rects, ink.shape, cfg, scale):
        box, mask = _group_mask(ink, contours, rects, ids)
        if not _plausible(box, mask, ink.shape, cfg, scale):
            continue
        gid = len(regions)
        for part_box, part_mask, parts in split_group(box, mask, cfg, alternatives):
            regions.append(_to_frame(part_box, part_mask, scale, (h0, w0), gid, parts))
    return regions


def ink_masks(gray: GrayImage, cfg: DetectConfig) -> tuple[GrayImage, GrayImage]:
    """255 where a pixel is darker than the paper around it by ``min_contrast`` (ink),
    and by half that (weak: where faint ruling is still continuous, for line finding)."""
    h, w = gray.shape
    sw, sh = max(2, w // BG_FACTOR), max(2, h // BG_FACTOR)
    small = cv2.resize(gray, (sw, sh), interpolation=cv2.INTER_AREA)
    # Closing (max then min) with a kernel wider than any pen stroke leaves only paper;
    # unlike a plain max filter it keeps the edges of shadows and of the sheet in place.
    k = 2 * max(1, round(min(sh, sw) * cfg.stroke_frac)) + 1
    bg = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)
    norm = cv2.divide(gray, bg, scale=255.0)
    _, ink = cv2.threshold(norm, 255.0 * (1.0 - cfg.min_contrast), 255, cv2.THRESH_BINARY_INV)
    _, weak = cv2.threshold(norm, 255.0 * (1.0 - 0.5 * cfg.min_contrast), 255, cv2.THRESH_BINARY_INV)
    # Drop isolated pixels (sensor noise, JPEG ringing) before tracing outlines: an opening
    # by 2x2, written out because morphologyEx would use one anchor for both halves of
    # an even kernel and shift the whole picture by a pixel.
    two = np.ones((2, 2), np.uint8)
    ink = cv2.dilate(cv2.erode(ink, two, anchor=(0, 0)), two, anchor=(1, 1))
    return ink, weak


def _group_pieces(rects: FloatArray, shape: tuple[int, ...], cfg: DetectConfig,
                  scale: float) -> list[list[int]]:
    """Drop specks and sheet edges; merge the pieces of broken digits. → index groups."""
    fh, fw = shape[0], shape[1]
    x, y, w, h = rects.T
    min_h = max(4.0, cfg.min_height_px * scale)
    max_h = cfg.max_height_frac * fh
    long_side = np.maximum(w, h)
    border = (x <= 0) | (y <= 0) | (x + w >= fw) | (y + h >= fh)
    edge = (border & (long_side > 0.35 * min(fh, fw))) | (w > 0.6 * fw) | (h > max_h)
    speck = long_side < max(3.0, 0.3 * min_h)
    idx = np.flatnonzero(~(edge | speck))
    if idx.size == 0:
        return []
    parent = list(range(idx.size))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if cfg.merge_broken and 1 < idx.size <= 600:
        bx, by, bw, bh = x[idx], y[idx], w[idx], h[idx]
        ox = np.minimum(bx[:, None] + bw[:, None], bx + bw) - np.maximum(bx[:, None], bx)
        oy = np.minimum(by[:, None] + bh[:, None], by + bh) - np.maximum(by[:, None], by)
        minw, minh = np.minimum(bw[:, None], bw), np.minimum(bh[:, None], bh)
        maxh = np.maximum(bh[:, None], bh)
        # Stacked pieces (a stroke cut by a ruled line, a "5"'s loose top bar): they share
        # columns and the vertical gap between them is small next to the digit's height.
        stacked = (ox >= 0.3 * minw) & (oy >= -(0.2 * maxh + 2)) & (oy <= 0.35 * minh)
        # A fragment lying mostly inside a bigger digit's box (a "4"'s or "7"'s cross bar).
        inside = (ox >= 0.6 * minw) & (oy >= 0.6 * minh) & (minh <= 0.65 * maxh)
        tall = np.maximum(by[:, None] + bh[:, None], by + bh) - np.minimum(by[:, None], by)
        wide = np.maximum(bx[:, None] + bw[:, None], bx + bw) - np.minimum(bx[:, None], bx)
        ok = (stacked | inside) & (tall <= max_h) & (wide <= cfg.split_aspect * tall)
        for i, j in zip(*np.nonzero(np.triu(ok, 1)), strict=True):
            ri, rj = root(int(i)), root(int(j))
            if ri != rj:
                parent[rj] = ri
    groups: dict[int, list[int]] = {}
    for k in range(idx.size):
        groups.setdefault(root(k), []).append(int(idx[k]))
    return list(groups.values())


def _group_mask(ink: GrayImage, contours: Sequence[npt.NDArray[np.int32]], rects: FloatArray,
                ids: list[int]) -> tuple[Box, GrayImage]:
    """The group's box and its own ink: inside its outlines and inked (holes stay empty)."""
    r = rects[ids]
    x, y = int(r[:, 0].min()), int(r[:, 1].min())
    x2, y2 = int((r[:, 0] + r[:, 2]).max()), int((r[:, 1] + r[:, 3]).max())
    mask = np.zeros((y2 - y, x2 - x), np.uint8)
    cv2.drawContours(mask, [contours[i] for i in ids], -1, 255, cv2.FILLED, offset=(-x, -y))
    cv2.bitwise_and(mask, ink[y:y2, x:x2], dst=mask)
    return Box(x, y, x2 - x, y2 - y), mask


def _plausible(box: Box, mask: GrayImage, shape: tuple[int, ...], cfg: DetectConfig, scale: float) -> bool:
    """Could this be a digit? Not too small or big, not a dash or line, not a solid blob."""
    fh, fw = shape[0], shape[1]
    if box.h < max(4.0, cfg.min_height_px * scale) or box.h > cfg.max_height_frac * fh:
        return False
    if box.w > 3 * box.h:  # a dash, an underline, a stray line
        return False
    if min(fh, fw) > 64 and (box.x <= 0 or box.y <= 0 or box.x2 >= fw or box.y2 >= fh):
        return False  # cut by the frame's edge (or the sheet's): not readable
    ink = cv2.countNonZero(mask)
    if ink < 0.04 * box.area:
        return False
    if ink > cfg.max_fill * box.area and box.w > 0.5 * box.h:
        # Solid, not strokes: a blob's inner part survives an erosion that strokes do not.
        k = max(3, int(0.3 * min(box.w, box.h))) | 1
        core = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        if cv2.countNonZero(core) > 0.02 * box.area:
            return False
    return True


def _to_frame(box: Box, mask: GrayImage, scale: float, shape: tuple[int, int], group: int,
              parts: int) -> Region:
    if scale >= 1.0:
        return Region(box, np.ascontiguousarray(mask), group=group, parts=parts)
    fh, fw = shape
    x, y = int(box.x / scale), int(box.y / scale)
    x2, y2 = min(fw, int(np.ceil(box.x2 / scale))), min(fh, int(np.ceil(box.y2 / scale)))
    big = cv2.resize(mask, (max(1, x2 - x), max(1, y2 - y)), interpolation=cv2.INTER_NEAREST)
    return Region(Box(x, y, x2 - x, y2 - y), big, group=group, parts=parts)

"""Greyscale frame → candidate digit regions, each with its own ink mask (pure).

The steps, each there for one thing a phone-quality camera does to paper:

1. Background normalisation: divide by a morphological closing of a 1/4-size copy, so
   shadows, light gradients and the colour cast's grey level all become "paper = 255".
2. Ink = pixels darker than that paper by ``min_contrast``; isolated pixels dropped.
3. Ruled and squared paper lines are cut out of the ink at whatever tilt the sheet has,
   and the strokes they crossed bridged again (``edge.recognition.lines``).
4. Outer contours (much cheaper than labelling), pieces of broken digits merged, then
   filters: specks, dashes and lines, solid blobs, things cut by the frame's edge.
5. Regions much wider than a digit are split into touching digits (``edge.recognition.split``).

Big frames are analysed at ``work_max_side``; boxes and masks come back in frame pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from edge.config import DetectConfig
from edge.recognition.lines import LONG_FRAC, STILL_LONG_FRAC, remove_lines
from edge.recognition.split import split_group
from edge.types import Box, GrayImage, Region

BG_FACTOR = 4  # the background is estimated on a 1/4-size image
BLOB_INSIDE = 0.75  # paper inside a digit's box is at least this bright next to that around it
FRAME_FILL = 0.3  # a component in a hole at least this x the hole's height makes a frame
FRAME_SHARE = 0.3  # ... and this share of its digit-sized holes holds one
SKEW_LIGHT = 0.5  # brightness skewed to the bright side by more than this: light ink
INK_SHORTFALL = 0.75  # a digit's ink box may be this much of the height it was written at
FAINT_FLOOR = 0.05  # the ink threshold never drops below this (paper texture, sensor noise)
STRONG = 2.5  # a one-pixel stroke is kept when this x min_contrast darker than the paper
VALLEY = 0.45  # a stroke's ink is darker than the paper beside it by this x min_contrast
MAX_STRING = 8.0  # a region up to this x wider than tall may be touching digits (a cheque's "3010")
TALL_COLUMN, STRING_COLUMNS = 0.4, 0.3  # ... when this share of its columns has ink across 40% of it
FloatArray = npt.NDArray[np.float64]


def find_regions(gray: GrayImage, cfg: DetectConfig, alternatives: bool = False,
                 still: bool = False, cut: bool = False) -> list[Region]:
    """Candidate digit regions of ``gray`` (uint8, HxW), in no particular order.

    With ``alternatives`` a region that may be several touching digits comes back both
    whole and split (same ``Region.group``), for the classifier to choose between
    (``edge.recognition.split.pick_alternatives``); without it the split is decided by shape alone.

    ``still`` is for a photo somebody took of their digits (``predict``, ``file:``): its
    author often crops it tight, so ink touching the image's edge and digits as tall as
    the image are read (``Region.clipped`` says which touch the edge). In a camera stream
    (``still`` false) such ink is the frame cutting a digit or the sheet's edge: left out,
    or with ``cut`` returned alone (not merged, not split) with ``clipped`` set, for the
    caller to count.
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
    min_h = max(4.0, cfg.min_height_px * scale)
    contours, frames, rects = outer_contours(ink, min_h)
    if frames.any():  # printed boxes and cells go whole, before ruling is looked for
        ink = _erase(ink, [contours[i] for i in np.flatnonzero(frames)])
    long_frac = STILL_LONG_FRAC if still else LONG_FRAC
    cleaned = remove_lines(ink, weak, long_frac) if cfg.remove_lines else ink
    if cleaned is not ink or frames.any():
        ink = cleaned
        contours, frames, rects = outer_contours(ink, min_h)
    if not contours:
        return []
    regions: list[Region] = []
    for ids, corners, is_cut in _group_pieces(rects, ink.shape, cfg, scale, still, frames, cut):
        box = Box(*(int(v) for v in corners[:2]), *(int(v) for v in corners[2:] - corners[:2]))
        if not _plausible_box(box, ink.shape, cfg, scale, still or is_cut):
            continue
        clipped = _touches_edge(box, ink.shape)
        mask = _group_mask(ink, contours, box, ids)
        if box.w > 3 * box.h and _dash(mask):
            continue
        if not _plausible_ink(box, mask, cfg, len(ids)) or not _on_paper(work, box, mask):
            continue
        outline = sum(cv2.arcLength(contours[i], True) for i in ids)
        if not _pen_strokes(work, box, mask, outline, cfg):
            continue
        gid = len(regions)
        for piece in split_group(box, mask, cfg, alternatives):
            regions.append(_to_frame(piece.box, piece.mask, scale, (h0, w0), gid, piece.parts, piece.prior,
                                     is_cut or (clipped and _touches_edge(piece.box, ink.shape)), piece.span))
    return regions


def outer_contours(ink: GrayImage, min_h: float
                   ) -> tuple[list[npt.NDArray[np.int32]], npt.NDArray[np.bool_], FloatArray]:
    """The outline of every ink component, also of those inside another's hole, which
    of them are frames (a printed box, a form's cells, a box drawn round a number), and
    their bounding boxes (x, y, w, h; one row each).

    ``RETR_EXTERNAL`` alone would hide a digit written inside a printed box or a cell: it
    lies in the hole of the box's outline. ``RETR_CCOMP`` puts such components on its top
    level again. A component is a frame when its holes hold digit-sized ones that fill a
    good part of the hole's height (inside a digit's own loop there is at most a speck of
    texture), in a good share of them (squared paper's squares are mostly empty; digits
    cross its lines). Frames are no digits, and their ink is erased before detection.
    """
    found, hierarchy = cv2.findContours(ink, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if not found:
        return [], np.zeros(0, np.bool_), np.zeros((0, 4))
    parents = hierarchy.reshape(-1, 4)[:, 3]
    top = np.flatnonzero(parents < 0)
    contours = [found[int(i)] for i in top]
    frames = np.zeros(len(top), np.bool_)
    rects = np.array([cv2.boundingRect(c) for c in found], np.float64).reshape(-1, 4)
    holes = np.flatnonzero((parents >= 0) & (rects[:, 3] >= 1.5 * min_h))
    if holes.size == 0:
        return contours, frames, rects[top]
    hx, hy, hw, hh = (rects[holes, k][:, None] for k in range(4))
    px, py, pw, ph = (rects[top, k][None, :] for k in range(4))
    held = ((px >= hx) & (py >= hy) & (px + pw <= hx + hw) & (py + ph <= hy + hh)
            & (ph >= np.maximum(min_h, FRAME_FILL * hh)))
    # Squared paper is one component too, but digits are written across its lines, and
    # its squares are mostly empty: a frame's holes hold digits in a good share of them.
    owner, holding = parents[holes], held.any(axis=1)
    for o in np.unique(owner[holding]):
        mine = owner == o
        if np.count_nonzero(holding & mine) >= FRAME_SHARE * np.count_nonzero(mine):
            frames[top == o] = True
    return contours, frames, rects[top]


def light_on_dark(gray: GrayImage, cfg: DetectConfig) -> bool:
    """Is the ink lighter than what it is written on (chalk on a board)?

    ``cfg.polarity`` decides unless it is ``auto``. Then: strokes are a small part of any
    frame and stand out from the local level on one side only, so the brightness around
    its local mean is skewed towards the ink: a long dark tail for pen on paper, a long
    bright one for chalk. Light gradients, texture and the edges of a sheet are removed
    by the local mean or are symmetric. (On the tuning scenes, 199 of 200 were told right
    both ways up; on the real cheques, 1078 of 1079.)
    """
    if cfg.polarity != "auto":
        return cfg.polarity == "light_on_dark"
    h, w = gray.shape
    f = max(1, max(h, w) // 160)  # about 160 px: a tight crop's thick strokes stay wider than a pixel
    small = shrink(gray, f).astype(np.float32)
    k = max(3, min(small.shape) // 6) | 1
    r = small - cv2.blur(small, (k, k))
    mean, sd = (float(v[0, 0]) for v in cv2.meanStdDev(r))  # one pass, summed in double
    if sd < 1.0:
        return False  # flat: nothing to read either way
    r -= mean
    return float(cv2.mean(r * r * r)[0]) / sd**3 > SKEW_LIGHT


def shrink(gray: GrayImage, f: int) -> GrayImage:
    """``gray`` reduced by the integer factor ``f`` (area averaging, at least 8 px a side).

    Halvings first: OpenCV's area resize has a fast path for exactly 2x (a 640x480 frame
    to a quarter: 0.02 ms in two halvings, 0.11 ms in one 4x step).
    """
    h, w = gray.shape
    size = (max(8, w // f), max(8, h // f))
    if size != (w // f, h // f):
        return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)  # type: ignore[no-any-return]
    return reduce_by(gray, f)


def reduce_by(gray: GrayImage, f: int) -> GrayImage:
    """``gray`` reduced to (w // f, h // f) by area averaging, halvings first (see ``shrink``)."""
    size = (gray.shape[1] // f, gray.shape[0] // f)
    while f % 2 == 0 and f > 1:
        gray = cv2.resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2), interpolation=cv2.INTER_AREA)
        f //= 2
    if f > 1:
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray


def _erase(ink: GrayImage, outlines: list[npt.NDArray[np.int32]]) -> GrayImage:
    """``ink`` without the components these outer outlines belong to (their own pixels
    only: what lies in their holes stays)."""
    out = ink.copy()
    for c in outlines:
        x, y = (int(v) for v in c[0, 0])
        cv2.floodFill(out, None, (x, y), 0, flags=8)
    return out


def ink_masks(gray: GrayImage, cfg: DetectConfig) -> tuple[GrayImage, GrayImage]:
    """255 where a pixel is darker than the paper around it by ``min_contrast`` (ink),
    and by half that (weak: where faint ruling is still continuous, for line finding)."""
    h, w = gray.shape
    # Two halvings: OpenCV's area resize has a fast path for exactly 2x, not for 4x.
    half = cv2.resize(gray, (max(2, w // 2), max(2, h // 2)), interpolation=cv2.INTER_AREA)
    sw, sh = max(2, w // BG_FACTOR), max(2, h // BG_FACTOR)
    small = cv2.resize(half, (sw, sh), interpolation=cv2.INTER_AREA)
    # Closing (max then min) with a kernel wider than any pen stroke leaves only paper;
    # unlike a plain max filter it keeps the edges of shadows and of the sheet in place.
    k = 2 * max(1, round(min(sh, sw) * cfg.stroke_frac)) + 1
    bg = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)
    norm = cv2.divide(gray, bg, scale=255.0)
    contrast = _ink_contrast(norm, cfg.min_contrast)
    _, ink = cv2.threshold(norm, 255.0 * (1.0 - contrast), 255, cv2.THRESH_BINARY_INV)
    _, weak = cv2.threshold(norm, 255.0 * (1.0 - 0.5 * contrast), 255, cv2.THRESH_BINARY_INV)
    # Drop isolated pixels (sensor noise, JPEG ringing, paper texture) before tracing
    # outlines: an opening by 2x2, written out because morphologyEx would use one anchor
    # for both halves of an even kernel and shift the whole picture by a pixel. The opening
    # also erases strokes one pixel wide, which a hairline pen on a big digit draws: those
    # come back where they are clearly dark (texture and noise are faint) and connected.
    two = np.ones((2, 2), np.uint8)
    opened = cv2.dilate(cv2.erode(ink, two, anchor=(0, 0)), two, anchor=(1, 1))
    _, strong = cv2.threshold(norm, 255.0 * (1.0 - STRONG * contrast), 1, cv2.THRESH_BINARY_INV)
    # Only within the clearly dark pixels' box (a fifth to a half of a camera frame): a
    # pixel there has its strong neighbours there too, so its count is the whole frame's.
    sx, sy, sw, sh = cv2.boundingRect(strong)
    if sw and sh:
        # a pixel wider each way: a one-pixel-wide column would reach cv2 as a Scalar
        roi = np.s_[max(0, sy - 1) : sy + sh + 1, max(0, sx - 1) : sx + sw + 1]
        neighbours = cv2.boxFilter(strong[roi], cv2.CV_8U, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
        connected = cv2.compare(neighbours, 3, cv2.CMP_GE)
        opened[roi] = cv2.bitwise_or(opened[roi], cv2.bitwise_and(connected, connected, mask=strong[roi]))
    return opened, weak


def _ink_contrast(norm: GrayImage, min_contrast: float) -> float:
    """The ink threshold for this frame: ``min_contrast``, or lower when even the darkest
    strokes in view are faint (pencil, a washed-out photo): half their darkness, so a
    30-grey-level pencil digit is not lost between its own faint stretches. The darkest
    stroke is taken after a 3x3 mean, so one dark noise pixel does not count.

    The 3x3 mean around the darkest single pixel is at least that darkest mean: when it is
    dark enough already (ink, not pencil: most frames), the threshold is ``min_contrast``
    and the frame need not be blurred to say so."""
    h, w = norm.shape
    _, _, (x, y), _ = cv2.minMaxLoc(norm)
    if 0 < x < w - 1 and 0 < y < h - 1:
        total = int(norm[y - 1 : y + 2, x - 1 : x + 2].sum(dtype=np.int32))
        if 1.0 - -(-total // 9) / 255.0 >= 2.0 * min_contrast:  # ceil: the blur rounds it at most up
            return max(FAINT_FLOOR, min_contrast)
    darkest = 1.0 - cv2.minMaxLoc(cv2.blur(norm, (3, 3)))[0] / 255.0
    return max(FAINT_FLOOR, min(min_contrast, 0.5 * darkest))


def _group_pieces(rects: FloatArray, shape: tuple[int, ...], cfg: DetectConfig, scale: float,
                  still: bool = False, frames: npt.NDArray[np.bool_] | None = None,
                  cut_too: bool = False) -> list[tuple[list[int], FloatArray, bool]]:
    """Drop specks and sheet edges; merge the pieces of broken digits.

    Returns (contour indices, box as x1, y1, x2, y2, cut) per group. In a stream, a
    digit-sized piece touching the frame's edge comes back alone with ``cut`` set: it is
    not read, but the reading says that a digit may be missing.
    """
    fh, fw = shape[0], shape[1]
    x, y, w, h = rects.T
    min_h = max(4.0, cfg.min_height_px * scale)
    max_h = fh if still else cfg.max_height_frac * fh
    long_side = np.maximum(w, h)
    border = (x <= 0) | (y <= 0) | (x + w >= fw) | (y + h >= fh)
    # In a stream, whatever touches the frame's edge is cut off (unreadable) or the sheet's
    # edge; it must not be merged into a digit either. In a still, the author's tight crop.
    stream_edge = (border & (min(fh, fw) > 64)) | (w > 0.6 * fw) | (h > max_h)
    edge = (w > 3 * h) & border if still else stream_edge  # still: a ruled line along the border
    speck = long_side < max(3.0, 0.3 * min_h)
    if frames is not None:
        edge |= frames
    digit_sized = ~speck & (w <= 0.6 * fw) & (h <= max_h) & (h >= min_h) & (w <= 3 * h)
    if frames is not None:
        digit_sized &= ~frames
    stream = cut_too and not still and min(fh, fw) > 64
    cut_ids = np.flatnonzero(border & digit_sized) if stream else np.zeros(0, np.intp)
    cut = [([int(i)], np.array([x[i], y[i], x[i] + w[i], y[i] + h[i]]), True) for i in cut_ids]
    idx = np.flatnonzero(~(edge | speck))
    if idx.size == 0:
        return cut
    groups = [[int(i)] for i in idx]
    boxes = np.stack([x[idx], y[idx], x[idx] + w[idx], y[idx] + h[idx]], axis=1)
    # Merge pairs, then pairs of the merged groups: faint pencil breaks a digit into
    # several pieces whose gaps only look small next to the partly assembled digit.
    for _ in range(3 if cfg.merge_broken else 0):
        if not 1 < len(groups) <= 600:
            break
        pairs = _mergeable(boxes, cfg, max_h)
        if not pairs:
            break
        parent = list(range(len(groups)))
        for i, j in pairs:
            ri, rj = _root(parent, i), _root(parent, j)
            if ri != rj:
                parent[rj] = ri
        roots = np.array([_root(parent, k) for k in range(len(groups))])
        keys, inverse = np.unique(roots, return_inverse=True)
        merged: list[list[int]] = [[] for _ in keys]
        for k, g in enumerate(groups):
            merged[inverse[k]].extend(g)
        new = np.empty((len(keys), 4))
        new[:, :2] = np.inf
        new[:, 2:] = -np.inf
        np.minimum.at(new[:, 0], inverse, boxes[:, 0])
        np.minimum.at(new[:, 1], inverse, boxes[:, 1])
        np.maximum.at(new[:, 2], inverse, boxes[:, 2])
        np.maximum.at(new[:, 3], inverse, boxes[:, 3])
        groups, boxes = merged, new
    return [(g, b, False) for g, b in zip(groups, boxes, strict=True)] + cut


def _root(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _mergeable(boxes: FloatArray, cfg: DetectConfig, max_h: float) -> list[tuple[int, int]]:
    """Pairs of boxes (x1, y1, x2, y2) that look like pieces of one digit."""
    bx, by, bx2, by2 = boxes.T
    bw, bh = bx2 - bx, by2 - by
    ox = np.minimum(bx2[:, None], bx2) - np.maximum(bx[:, None], bx)
    oy = np.minimum(by2[:, None], by2) - np.maximum(by[:, None], by)
    maxh = np.maximum(bh[:, None], bh)
    # Every rule below needs the two boxes within 0.2 x the taller one's height + 2 px of
    # each other both ways, and sharing columns unless one of them is flat (a "5"'s bar):
    # with no such pair (separate digits side by side) the rest is not worked out.
    reach = -(0.2 * maxh + 2)
    columns = reach if bool((bw >= 1.2 * bh).any()) else 0.0
    if not np.triu((ox >= columns) & (oy >= reach), 1).any():
        return []
    minw, minh = np.minimum(bw[:, None], bw), np.minimum(bh[:, None], bh)
    tall = np.maximum(by2[:, None], by2) - np.minimum(by[:, None], by)
    wide = np.maximum(bx2[:, None], bx2) - np.minimum(bx[:, None], bx)
    # Pieces of one digit (a stroke cut by a ruled line, faint pencil breaking up, a
    # "5"'s loose bar) share columns and nearly touch. Two pieces that each span the
    # full height side by side are two digits, not one.
    both_full = (bh[:, None] >= 0.75 * tall) & (bh >= 0.75 * tall)
    shared = (ox >= 0.3 * minw) & (oy >= -(0.2 * maxh + 2)) & ~both_full
    # A fragment lying mostly inside a bigger digit's box (a "4"'s or "7"'s cross bar).
    inside = (ox >= 0.6 * minw) & (oy >= 0.6 * minh) & (minh <= 0.65 * maxh)
    # A "5"'s loose bar: a flat piece by the top corner of a taller one, nearly touching it.
    near = 0.2 * maxh + 2
    flat_i = (bw >= 1.2 * bh)[:, None] & (bh[:, None] <= 0.5 * bh) & (by2[:, None] <= by + 0.35 * bh)
    flat_i &= bx[:, None] >= bx + 0.3 * bw  # it starts over the body and runs right, not left
    bar = flat_i & (ox >= -near) & (oy >= -near)
    bar |= bar.T
    # A small number written just above or below a big digit is not a piece of it: the
    # pieces of one digit are of like height, or the smaller one barely sticks out, or
    # only a ruled line's width lies between them.
    alike = (minh >= 0.5 * maxh) | (tall <= 1.25 * maxh) | (oy >= -(5 + 0.05 * maxh))
    long_bar = bar & (wide <= 2 * tall)  # a "5" with a long flag is wider than most digits
    ok = (((shared | inside) & (wide <= cfg.split_aspect * tall)) | long_bar) & alike & (tall <= max_h)
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(ok, 1)), strict=True)]


def _group_mask(ink: GrayImage, contours: Sequence[npt.NDArray[np.int32]], box: Box,
                ids: list[int]) -> GrayImage:
    """The group's own ink: inside its outlines and inked (holes stay empty)."""
    mask = np.zeros((box.h, box.w), np.uint8)
    cv2.drawContours(mask, [contours[i] for i in ids], -1, 255, cv2.FILLED, offset=(-box.x, -box.y))
    cv2.bitwise_and(mask, ink[box.y : box.y2, box.x : box.x2], dst=mask)
    return mask


def _plausible_box(box: Box, shape: tuple[int, ...], cfg: DetectConfig, scale: float,
                   still: bool = False) -> bool:
    """Could a digit have this box? Not too small or big, not a dash, not cut by the edge
    (in a still, a tight crop's edge is allowed)."""
    fh, fw = shape[0], shape[1]
    # The ink of a digit written min_height_px tall often spans a pixel or three less.
    tallest = fh if still else cfg.max_height_frac * fh
    if box.h < max(4.0, INK_SHORTFALL * cfg.min_height_px * scale) or box.h > tallest:
        return False
    if box.w > MAX_STRING * box.h:  # a dash, an underline, a stray line
        return False
    # Cut by the frame's edge (or the sheet's): not readable.
    return still or not (min(fh, fw) > 64 and _touches_edge(box, shape))


def _dash(mask: GrayImage) -> bool:
    """A dash, an underline or a stray line, not a string of touching digits: in few of its
    columns does the ink reach across much of the height (digits' strokes do in most)."""
    h = mask.shape[0]
    rows = np.arange(h)[:, None]
    on = mask > 0
    top = np.where(on, rows, h).min(axis=0)
    bottom = np.where(on, rows, -1).max(axis=0)
    tall = (bottom - top + 1) >= TALL_COLUMN * h
    return bool(np.count_nonzero(tall) < STRING_COLUMNS * mask.shape[1])


def _touches_edge(box: Box, shape: tuple[int, ...]) -> bool:
    return box.x <= 0 or box.y <= 0 or box.x2 >= shape[1] or box.y2 >= shape[0]


def _plausible_ink(box: Box, mask: GrayImage, cfg: DetectConfig, pieces: int = 1) -> bool:
    """Strokes, not a smudge or a solid blob. Sparse ink is a smudge when it comes in
    pieces; one unbroken stroke as long as the box is a hairline pen on a big digit."""
    ink = cv2.countNonZero(mask)
    if ink < 0.04 * box.area and (pieces > 1 or ink < 1.5 * max(box.w, box.h)):
        return False
    if ink > cfg.max_fill * box.area and box.w > 0.5 * box.h:
        # Solid, not strokes: a blob's inner part survives an erosion that strokes do not.
        k = max(3, int(0.3 * min(box.w, box.h))) | 1
        core = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        if cv2.countNonZero(core) > 0.02 * box.area:
            return False
    return True


def _on_paper(gray: GrayImage, box: Box, mask: GrayImage) -> bool:
    """Is the paper between the strokes as bright as the paper around the box? Inside a
    dark blob (a thumb, a stain) the background model follows the blob and leaves only
    its rim as "ink"; that rim encloses dark paper, a digit encloses light paper."""
    fh, fw = gray.shape
    pad = max(2, box.h // 4)
    x0, y0, x1, y1 = max(0, box.x - pad), max(0, box.y - pad), min(fw, box.x2 + pad), min(fh, box.y2 + pad)
    grown = cv2.dilate(mask, _NEAR)
    if box.area - cv2.countNonZero(grown) < 0.1 * box.area:
        return True
    crop = gray[box.y : box.y2, box.x : box.x2]
    inside = cv2.mean(crop, mask=cv2.compare(grown, 0, cv2.CMP_EQ))[0]
    ring = (y1 - y0) * (x1 - x0) - box.area  # the padding round the box: its sum is the padded crop's less the box's
    if ring <= 0:
        return True
    outside = (cv2.sumElems(gray[y0:y1, x0:x1])[0] - cv2.sumElems(crop)[0]) / ring
    return bool(inside >= BLOB_INSIDE * outside)


_NEAR = np.ones((3, 3), np.uint8)


def _pen_strokes(gray: GrayImage, box: Box, mask: GrayImage, outline: float, cfg: DetectConfig) -> bool:
    """Are the ink pixels the bottom of a valley (paper on both sides), not the dark side
    of a step? The rim of a thumb, a stain or the desk beyond the sheet's edge is "ink" to
    the background model, and reads as a confident "1"; a morphological closing wider than
    the stroke fills a pen stroke's valley but leaves a step as it is.

    ``outline`` is the length of the group's outer contours: area / (outline / 2) is at least
    the mean stroke width (holes are not in the outline), so the closing is wide enough.
    """
    on_ink = mask > 0
    k = 2 * int(2.0 * np.count_nonzero(on_ink) / max(1.0, outline)) + 3
    fh, fw = gray.shape
    x0, y0, x1, y1 = max(0, box.x - k), max(0, box.y - k), min(fw, box.x2 + k), min(fh, box.y2 + k)
    crop = gray[y0:y1, x0:x1]
    rect = np.ones((k, k), np.uint8)
    dilated = cv2.dilate(crop, rect)
    # The closing is only read inside the box: erode just the box grown by k // 2 (every
    # erosion window of a box pixel lies in it, so the values are the full closing's).
    r = k // 2
    ex0, ey0 = max(0, box.x - x0 - r), max(0, box.y - y0 - r)
    ex1, ey1 = min(x1 - x0, box.x2 - x0 + r), min(y1 - y0, box.y2 - y0 + r)
    closed = cv2.erode(dilated[ey0:ey1, ex0:ex1], rect)
    inside = (slice(box.y - y0, box.y2 - y0), slice(box.x - x0, box.x2 - x0))
    shifted = (slice(box.y - y0 - ey0, box.y2 - y0 - ey0), slice(box.x - x0 - ex0, box.x2 - x0 - ex0))
    paper = closed[shifted][on_ink].astype(np.float32)
    deep = crop[inside][on_ink] <= paper * (1.0 - VALLEY * cfg.min_contrast)
    return 2 * int(np.count_nonzero(deep)) >= int(deep.size)  # the median ink pixel is in a valley


def _to_frame(box: Box, mask: GrayImage, scale: float, shape: tuple[int, int], group: int,
              parts: int, prior: float, clipped: bool = False, span: tuple[int, int] | None = None) -> Region:
    if scale >= 1.0:
        return Region(box, np.ascontiguousarray(mask), group=group, parts=parts, prior=prior, clipped=clipped,
                      span=span)
    fh, fw = shape
    x, y = int(box.x / scale), int(box.y / scale)
    x2, y2 = min(fw, int(np.ceil(box.x2 / scale))), min(fh, int(np.ceil(box.y2 / scale)))
    big = cv2.resize(mask, (max(1, x2 - x), max(1, y2 - y)), interpolation=cv2.INTER_NEAREST)
    return Region(Box(x, y, x2 - x, y2 - y), big, group=group, parts=parts, prior=prior, clipped=clipped,
                  span=span)

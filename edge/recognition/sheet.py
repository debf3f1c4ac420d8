"""Find the sheet of paper in a frame: its outline → a homography to sheet coordinates.

Fields are placed as fractions of the sheet, so a bumped camera or a moved card still puts
each region on the same printed box. The sheet is the largest bright four-cornered shape
that is clearly smaller than the frame (paper on a darker desk, a card on a wall); when
there is none (the paper fills the view), the caller falls back to frame coordinates.
Pure: numpy and OpenCV only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from edge.types import Box, GrayImage

WORK_SIDE = 480  # the outline is found on a copy this size (longest side): it is a big shape
MIN_AREA_FRAC = 0.12  # a sheet covers at least this much of the frame
MAX_AREA_FRAC = 0.97  # ... and less than this (else the paper is the frame)
MIN_CONTRAST = 25.0  # grey levels between the paper and what surrounds it
INSET = 0.015  # the rectified sheet leaves out this much at each edge: no sliver of desk as a "1"


@dataclass(frozen=True, slots=True)
class Sheet:
    """The sheet's corners in frame pixels (TL, TR, BR, BL) and the maps between the two."""

    corners: tuple[tuple[float, float], ...]
    to_sheet: npt.NDArray[np.float64]  # 3x3: frame pixels → sheet fractions (0..1)
    to_frame: npt.NDArray[np.float64]  # 3x3: sheet fractions → frame pixels
    size: tuple[int, int] = (0, 0)  # the rectified sheet's width and height, at the frame's scale

    def rectify(self, gray: GrayImage) -> GrayImage:
        """The sheet cut out of the frame and turned upright (its inset part), ``size`` pixels."""
        w, h = self.size
        inner = np.diag([(1 - 2 * INSET), (1 - 2 * INSET), 1.0])
        inner[0, 2] = inner[1, 2] = INSET
        to_rect = np.linalg.inv(self.to_frame @ inner @ np.diag([1.0 / w, 1.0 / h, 1.0]))
        return cv2.warpPerspective(gray, to_rect, (w, h), flags=cv2.INTER_LINEAR,  # type: ignore[no-any-return]
                                   borderMode=cv2.BORDER_REPLICATE)

    def rect_to_sheet(self, box: Box) -> tuple[float, float, float, float]:
        """A box on the rectified sheet as sheet fractions (x, y, w, h)."""
        w, h = self.size
        k = 1 - 2 * INSET
        return INSET + box.x / w * k, INSET + box.y / h * k, box.w / w * k, box.h / h * k

    def rect_to_frame(self, box: Box) -> Box:
        """A box on the rectified sheet as the bounding box of its corners in the frame."""
        x, y, w, h = self.rect_to_sheet(box)
        pts = np.array([[[x, y], [x + w, y], [x + w, y + h], [x, y + h]]], np.float64)
        mapped = cv2.perspectiveTransform(pts, self.to_frame)[0]
        x0, y0 = np.floor(mapped.min(axis=0))
        x1, y1 = np.ceil(mapped.max(axis=0))
        return Box(int(x0), int(y0), max(1, int(x1 - x0)), max(1, int(y1 - y0)))

    def box_in_sheet(self, box: Box) -> tuple[float, float, float, float]:
        """The box's corners mapped to the sheet, as their bounding x, y, w, h (fractions)."""
        pts = np.array([[box.x, box.y], [box.x2, box.y], [box.x2, box.y2], [box.x, box.y2]], np.float64)
        mapped = cv2.perspectiveTransform(pts[None], self.to_sheet)[0]
        x0, y0 = mapped.min(axis=0)
        x1, y1 = mapped.max(axis=0)
        return float(x0), float(y0), float(x1 - x0), float(y1 - y0)

    def scaled(self, f: float) -> Sheet:
        """The same sheet in a frame scaled by ``f`` (boxes read on a reduced copy, mapped back)."""
        s = np.diag([f, f, 1.0])
        corners = tuple((x * f, y * f) for x, y in self.corners)
        return Sheet(corners, self.to_sheet @ np.linalg.inv(s), s @ self.to_frame,
                     (max(1, round(self.size[0] * f)), max(1, round(self.size[1] * f))))

    def region_in_frame(self, region: tuple[float, float, float, float]) -> list[list[float]]:
        """A sheet region's four corners in frame pixels (to draw it)."""
        x, y, w, h = region
        pts = np.array([[[x, y], [x + w, y], [x + w, y + h], [x, y + h]]], np.float64)
        return [[float(a), float(b)] for a, b in cv2.perspectiveTransform(pts, self.to_frame)[0]]


def order_corners(pts: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Four points as top-left, top-right, bottom-right, bottom-left (any rotation below 45°)."""
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    ring = pts[np.argsort(angles)]  # clockwise on screen, starting somewhere
    start = int(np.argmin(ring.sum(axis=1)))  # the top-left has the smallest x + y
    return np.roll(ring, -start, axis=0)


def find_sheet(gray: GrayImage) -> Sheet | None:
    """The sheet in ``gray`` (dark ink on light paper), or None when no outline stands out."""
    h, w = gray.shape[:2]
    f = min(1.0, WORK_SIDE / max(h, w))
    small = cv2.resize(gray, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (5, 5), 0)
    _, mask = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # Close the ink inside the paper so the outline is the sheet's, not the writing's.
    k = max(3, round(min(small.shape) * 0.03)) | 1
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    outline = max(contours, key=cv2.contourArea)
    area = cv2.contourArea(outline) / float(small.shape[0] * small.shape[1])
    if not MIN_AREA_FRAC <= area <= MAX_AREA_FRAC:
        return None
    inside = small[mask > 0]
    outside = small[mask == 0]
    if outside.size == 0 or float(inside.mean()) - float(outside.mean()) < MIN_CONTRAST:
        return None
    hull = cv2.convexHull(outline)
    quad = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True)
    if len(quad) != 4:
        return None
    corners = order_corners(quad.reshape(4, 2).astype(np.float64) / f)
    unit = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64)
    to_sheet = cv2.getPerspectiveTransform(corners.astype(np.float32), unit.astype(np.float32))
    to_frame = cv2.getPerspectiveTransform(unit.astype(np.float32), corners.astype(np.float32))
    tl, tr, br, bl = corners
    size = (round(max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))),
            round(max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))))
    return Sheet(tuple((float(x), float(y)) for x, y in corners), to_sheet, to_frame, size)

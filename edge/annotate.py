"""Draw what was read onto a frame, so a person can see it (predict --annotate, snapshots)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from edge.types import Digit, Number

GREEN = (60, 180, 60)
AMBER = (0, 170, 255)
BLUE = (200, 120, 0)


def annotate(
    image: npt.NDArray[np.uint8],
    digits: Sequence[Digit],
    numbers: Sequence[Number],
    min_confidence: float = 0.0,
) -> npt.NDArray[np.uint8]:
    """A BGR copy of ``image`` with a box and label per digit and per number."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    scale = max(out.shape[:2]) / 640.0
    thick = max(1, round(2 * scale))
    font = 0.5 * max(scale, 0.6)
    for n in numbers:
        b = n.box
        pad = max(2, round(4 * scale))
        cv2.rectangle(out, (b.x - pad, b.y - pad), (b.x2 + pad, b.y2 + pad), BLUE, thick)
        _label(out, f"{n.value} ({n.confidence:.2f})", (b.x - pad, b.y2 + pad), font, BLUE, below=True)
    for d in digits:
        b = d.box
        color = GREEN if d.confidence >= max(min_confidence, 0.9) else AMBER
        cv2.rectangle(out, (b.x, b.y), (b.x2, b.y2), color, thick)
        text = f"{d.digit} {d.confidence:.2f}"
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        if tw > b.w + 6:  # narrow digit (a "1", or digits close together): labels would overlap
            text = str(d.digit)
        _label(out, text, (b.x, b.y), font, color, below=False)
    return out


def _label(
    img: npt.NDArray[np.uint8], text: str, at: tuple[int, int], font: float, color: tuple[int, int, int], below: bool
) -> None:
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
    x = min(max(0, at[0]), max(0, img.shape[1] - tw - 2))
    y = at[1] + th + 4 if below else at[1] - 4
    y = min(max(th + 2, y), img.shape[0] - base - 1)
    cv2.rectangle(img, (x, y - th - 2), (x + tw + 2, y + base), color, -1)
    cv2.putText(img, text, (x + 1, y), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), 1, cv2.LINE_AA)


def draw_outlines(image: npt.NDArray[np.uint8], outlines: Sequence[tuple[str, Sequence[Sequence[float]]]]
                  ) -> npt.NDArray[np.uint8]:
    """Four-cornered outlines (the sheet, named "", and each field's region) drawn on ``image``."""
    scale = max(image.shape[:2]) / 640.0
    thick = max(1, round(scale))
    for name, corners in outlines:
        pts = np.array(corners, np.float32).round().astype(np.int32).reshape(-1, 1, 2)
        color = BLUE if not name else AMBER
        cv2.polylines(image, [pts], True, color, thick, cv2.LINE_AA)
        if name:
            x, y = int(pts[:, 0, 0].min()), int(pts[:, 0, 1].max())
            cv2.putText(image, name, (x + 2, y - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * max(scale, 0.6), color,
                        thick, cv2.LINE_AA)
    return image


def encode_jpeg(image: npt.NDArray[np.uint8], quality: int = 80) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())

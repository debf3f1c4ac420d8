"""A rendered form for the field tests: three fields among other numbers and printed text,
on a sheet that can lie shifted and turned on a darker desk."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from tests.imaging import draw_number, paper, save

SHEET_W, SHEET_H = 600, 420
FRAME_W, FRAME_H = 960, 720
DIGIT_H = 40

# name -> (x, y, width, height) in sheet fractions, the text written there (see render_form)
REGIONS = {
    "meter": (0.30, 0.08, 0.55, 0.17),
    "count": (0.30, 0.40, 0.30, 0.17),
    "id": (0.30, 0.72, 0.66, 0.17),
}


def fields_yaml(meter_rules: str = "") -> str:
    """The ``fields:`` section for the form (the meter may get more rules)."""
    out = ["fields:"]
    formats = {"meter": "#####", "count": "##", "id": "#######"}
    for name, region in REGIONS.items():
        out.append(f"  - name: {name}")
        out.append(f"    region: [{', '.join(str(v) for v in region)}]")
        out.append(f'    format: "{formats[name]}"')
        if name == "meter" and meter_rules:
            out.extend("    " + line for line in meter_rules.strip().splitlines())
    return "\n".join(out) + "\n"


def render_sheet(meter: str, count: str, ident: str, seed: int = 0) -> npt.NDArray[np.float32]:
    """The form: a label and a number per field, plus a page number and a date that are no field."""
    sheet = paper(SHEET_W, SHEET_H, seed=seed, gradient=15.0)
    for name, text, in (("meter", meter), ("count", count), ("id", ident)):
        x, y, _, h = REGIONS[name]
        px, py = int((x + 0.02) * SHEET_W), int((y + h / 2) * SHEET_H - DIGIT_H / 2)
        draw_number(sheet, text, px, py, DIGIT_H, seed=seed + len(text))
        label = {"meter": "Meter", "count": "Count", "id": "ID"}[name]
        text_ink = np.zeros((SHEET_H, SHEET_W), np.uint8)  # printed text: OpenCV draws on uint8 only
        cv2.putText(text_ink, label, (int(0.04 * SHEET_W), py + DIGIT_H - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.9,
                    255, 2, cv2.LINE_AA)
        sheet *= (1.0 - 0.7 * text_ink.astype(np.float32) / 255.0)[:, :, None]
    draw_number(sheet, "31", int(0.06 * SHEET_W), int(0.26 * SHEET_H), DIGIT_H - 6, seed=seed + 7)  # no field
    draw_number(sheet, "806", int(0.70 * SHEET_W), int(0.44 * SHEET_H), DIGIT_H - 6, seed=seed + 9)  # no field
    return sheet


def place_on_desk(sheet: npt.NDArray[np.float32], dx: float = 0.0, dy: float = 0.0, angle: float = 0.0,
                  seed: int = 0) -> npt.NDArray[np.float32]:
    """The sheet on a grey desk: centred, then moved by (dx, dy) of the frame and turned ``angle``°."""
    rng = np.random.default_rng(seed)
    desk = np.full((FRAME_H, FRAME_W, 3), 85.0, np.float32) + rng.normal(0, 3.0, (FRAME_H, FRAME_W, 3)).astype(
        np.float32)
    cx, cy = FRAME_W / 2 + dx * FRAME_W, FRAME_H / 2 + dy * FRAME_H
    m = cv2.getRotationMatrix2D((SHEET_W / 2, SHEET_H / 2), angle, 1.0)
    m[0, 2] += cx - SHEET_W / 2
    m[1, 2] += cy - SHEET_H / 2
    warped = cv2.warpAffine(sheet, m, (FRAME_W, FRAME_H), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(np.ones((SHEET_H, SHEET_W), np.float32), m, (FRAME_W, FRAME_H))[:, :, None]
    return warped * mask + desk * (1.0 - mask)


def render_form(path: Path, meter: str = "04127", count: str = "38", ident: str = "5190264",
                dx: float = 0.0, dy: float = 0.0, angle: float = 0.0, seed: int = 0) -> Path:
    """Write the form as a picture file (PNG or JPEG, by ``path``'s suffix)."""
    return save(path, place_on_desk(render_sheet(meter, count, ident, seed), dx, dy, angle, seed))

"""Fields on rendered forms: the form renderer (also used by the tests) and the bench figure.

A form is a sheet with three fields — a 5-digit meter value, a 2-digit count, a 7-digit ID —
each after a printed label, plus two handwritten numbers that are no field. It lies on a
darker desk, centred ("straight") or moved by up to 15% of the frame and turned by up to
±10° ("shifted"). Three readers are compared on the same forms: regions on the sheet read
upright (ours), regions on the sheet without reading it upright (the homography only), and
fixed boxes in the frame placed for the centred sheet (what a fixed-box reader does).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
Glyphs = dict[int, list[npt.NDArray[np.uint8]]]  # digit -> glyphs, black ink on white (0..255)

SHEET_W, SHEET_H = 600, 420
FRAME_W, FRAME_H = 960, 720
DIGIT_H = 40
REGIONS = {  # name -> (x, y, width, height) in sheet fractions
    "meter": (0.30, 0.08, 0.55, 0.17),
    "count": (0.30, 0.40, 0.30, 0.17),
    "id": (0.30, 0.72, 0.66, 0.17),
}
FORMATS = {"meter": "#####", "count": "##", "id": "#######"}
LABELS = {"meter": "Meter", "count": "Count", "id": "ID"}


def paper(width: int, height: int, seed: int = 0, gradient: float = 40.0) -> F32:
    """Off-white paper, lit from one side, with a little sensor noise (BGR float 0..255)."""
    rng = np.random.default_rng(seed)
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    light = 225.0 - gradient * xs + np.zeros((height, 1), np.float32)
    img = np.stack([light * 0.97, light, light * 1.02], axis=2)
    img += np.asarray(rng.normal(0.0, 2.0, size=img.shape), np.float32)
    return np.asarray(img, np.float32)


def draw_number(canvas: F32, glyphs: Glyphs, text: str, x: int, y: int, height: int, seed: int = 0,
                spacing: float = 0.25) -> list[tuple[int, int, int, int]]:
    """Write ``text`` with the glyphs at (x, y); each digit's ink box (x, y, w, h)."""
    rng = np.random.default_rng(seed)
    boxes = []
    for ch in text:
        options = glyphs[int(ch)]
        g = options[int(rng.integers(len(options)))]
        big = cv2.resize(g, (height, height), interpolation=cv2.INTER_CUBIC)
        ink = np.clip(1.0 - big.astype(np.float32) / 255.0, 0.0, 1.0)
        ys, xs = np.nonzero(ink > 0.3)
        ink = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        h, w = ink.shape
        canvas[y : y + h, x : x + w] *= (1.0 - 0.85 * ink)[:, :, None]
        boxes.append((x, y, w, h))
        x += w + int(spacing * height)
    return boxes


def render_sheet(glyphs: Glyphs, values: dict[str, str], seed: int = 0) -> F32:
    """The form: a printed label and a handwritten number per field, and two numbers that are no field."""
    sheet = paper(SHEET_W, SHEET_H, seed=seed, gradient=15.0)
    for name, (x, y, _, h) in REGIONS.items():
        text = values[name]
        px, py = int((x + 0.02) * SHEET_W), int((y + h / 2) * SHEET_H - DIGIT_H / 2)
        draw_number(sheet, glyphs, text, px, py, DIGIT_H, seed=seed + len(text))
        printed = np.zeros((SHEET_H, SHEET_W), np.uint8)  # OpenCV draws text on uint8 only
        cv2.putText(printed, LABELS[name], (int(0.04 * SHEET_W), py + DIGIT_H - 8), cv2.FONT_HERSHEY_SIMPLEX,
                    0.9, 255, 2, cv2.LINE_AA)
        sheet *= (1.0 - 0.7 * printed.astype(np.float32) / 255.0)[:, :, None]
    draw_number(sheet, glyphs, "31", int(0.06 * SHEET_W), int(0.26 * SHEET_H), DIGIT_H - 6, seed=seed + 7)
    draw_number(sheet, glyphs, "806", int(0.70 * SHEET_W), int(0.44 * SHEET_H), DIGIT_H - 6, seed=seed + 9)
    return sheet


def place_on_desk(sheet: F32, dx: float = 0.0, dy: float = 0.0, angle: float = 0.0, seed: int = 0) -> F32:
    """The sheet on a grey desk: centred, then moved by (dx, dy) of the frame and turned ``angle``°."""
    rng = np.random.default_rng(seed)
    desk = np.full((FRAME_H, FRAME_W, 3), 85.0, np.float32)
    desk += rng.normal(0, 3.0, desk.shape).astype(np.float32)
    h, w = sheet.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[0, 2] += FRAME_W / 2 + dx * FRAME_W - w / 2
    m[1, 2] += FRAME_H / 2 + dy * FRAME_H - h / 2
    warped = cv2.warpAffine(sheet, m, (FRAME_W, FRAME_H), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(np.ones((h, w), np.float32), m, (FRAME_W, FRAME_H))[:, :, None]
    return warped * mask + desk * (1.0 - mask)  # type: ignore[no-any-return]


def fields_config(regions: dict[str, tuple[float, float, float, float]] | None = None) -> list[dict[str, Any]]:
    """The ``fields:`` entries for the form (regions: sheet fractions unless given)."""
    return [{"name": n, "region": list((regions or REGIONS)[n]), "format": FORMATS[n]} for n in REGIONS]


def frame_regions() -> dict[str, tuple[float, float, float, float]]:
    """The regions as fixed boxes in the frame, where they are when the sheet lies centred."""
    x0, y0 = (FRAME_W - SHEET_W) / 2, (FRAME_H - SHEET_H) / 2
    return {n: ((x0 + x * SHEET_W) / FRAME_W, (y0 + y * SHEET_H) / FRAME_H, w * SHEET_W / FRAME_W,
                h * SHEET_H / FRAME_H) for n, (x, y, w, h) in REGIONS.items()}


def form_set(glyphs: Glyphs, seeds: Sequence[int], shifted: bool) -> list[tuple[npt.NDArray[np.uint8],
                                                                                   dict[str, str]]]:
    """(picture, true values) per seed; random values, and a random placement when ``shifted``."""
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        values = {n: "".join(str(int(d)) for d in rng.integers(0, 10, len(FORMATS[n]))) for n in REGIONS}
        dx, dy, angle = (rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15), rng.uniform(-10, 10)) if shifted \
            else (0.0, 0.0, 0.0)
        picture = place_on_desk(render_sheet(glyphs, values, seed), dx, dy, angle, seed)
        _, jpeg = cv2.imencode(".jpg", np.clip(picture, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
        decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
        assert decoded is not None  # our own JPEG
        out.append((np.asarray(decoded, np.uint8), values))
    return out


def measure_fields(classifier: Any, glyphs: Glyphs, n: int, seed: int) -> dict[str, Any]:
    """Fields read right (value and status ok), per reader and set; ms per form per reader."""
    from edge.config import Config
    from edge.fields import read_fields
    from edge.recognition.pipeline import Pipeline

    on_sheet = Config.model_validate({"fields": fields_config()})
    fixed = Config.model_validate({"fields": fields_config(frame_regions())})
    readers: dict[str, tuple[Pipeline, Config]] = {}
    readers["sheet"] = (Pipeline(classifier, on_sheet, still=True), on_sheet)
    upright = Pipeline(classifier, on_sheet, still=True)
    upright.rectify = False
    readers["sheet_not_rectified"] = (upright, on_sheet)
    boxes = Pipeline(classifier, fixed, still=True)
    boxes.find_sheet = False
    readers["fixed_boxes"] = (boxes, fixed)
    out: dict[str, Any] = {"forms_per_set": n}
    for set_name, shifted in (("straight", False), ("shifted", True)):
        forms = form_set(glyphs, range(seed, seed + n), shifted)
        for name, (pipeline, cfg) in readers.items():
            right = whole = 0
            t0 = time.perf_counter()
            for picture, truth in forms:
                got = read_fields(cfg.fields, pipeline.process(picture))
                ok = [got[k].status == "ok" and got[k].value == v for k, v in truth.items()]
                right += sum(ok)
                whole += all(ok)
            ms = (time.perf_counter() - t0) * 1e3 / max(1, len(forms))
            out.setdefault(name, {})[set_name] = {"fields_right": round(right / (3 * len(forms)), 4),
                                                  "forms_right": round(whole / len(forms), 4), "ms": round(ms, 1)}
    return out


def field_lines(f: dict[str, Any]) -> list[str]:
    """The bench table's lines for the fields figure."""
    lines = [f"Fields on rendered forms ({f['forms_per_set']} per set; 3 fields each; sheet moved ≤15%, "
             "turned ≤±10° when shifted):",
             f"  {'reader':<22}{'straight':>10}{'shifted':>10}{'all 3 (shifted)':>18}{'ms/form':>9}"]
    for name in ("sheet", "sheet_not_rectified", "fixed_boxes"):
        r = f[name]
        lines.append(f"  {name:<22}{r['straight']['fields_right']:>10.1%}{r['shifted']['fields_right']:>10.1%}"
                     f"{r['shifted']['forms_right']:>18.1%}{r['shifted']['ms']:>9.1f}")
    return lines

"""Sweeps: one condition varied at a time over its range, everything else easy.

A mixed scene set says how often the reader fails but not where it stops working; a sweep
does: each condition's levels are drawn by edge/bench/render2.py from the same seeds (so the
curve moves only with the condition), and each level is scored like any scene set. The
target: every level ≥ 92% of digits read right, their mean ≥ 95%.

The glyphs are the tuning half of MNIST test (the independent set uses the other half).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.bench.accuracy import Reader, score_scenes
from edge.bench.render2 import INKS, PAPERS, GlyphSource, Look, render
from edge.bench.scenes import Scene

SWEEP_SEED = 300_000
LEVEL_TARGET, MEAN_TARGET = 0.92, 0.95
BASE = Look(height=64.0, pen=0.08, blur=0.5, noise=2.0, texture=0.4, lamp=0.15, vignette=0.2, jpeg=85)

# name → (Look field, levels, how a level is printed)
CONDITIONS: dict[str, tuple[str, list[Any], str]] = {
    "pen width, % of height": ("pen", [0.02, 0.04, 0.06, 0.09, 0.13, 0.18, 0.25], "{:.0%}"),
    "digit height, px": ("height", [14, 20, 28, 40, 64, 100, 160, 250, 350, 456], "{:.0f}"),
    "contrast, grey levels": ("contrast", [30, 45, 60, 80, 110, 150, 200], "{:.0f}"),
    "defocus, disc radius px": ("blur", [0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0], "{:g}"),
    "rotation, degrees": ("rotation", [-30, -20, -10, 0, 10, 20, 30], "{:+d}"),
    "camera tilt, degrees": ("tilt", [0, 10, 20, 30, 40, 50], "{:d}"),
    "sensor noise, sigma": ("noise", [0, 4, 8, 12, 16, 20], "{:d}"),
    "chalk on a board, share skipped": ("chalk", [0.0, 0.1, 0.2, 0.3, 0.4], "{:.0%}"),
    "ink colour": ("ink", list(INKS), "{}"),
    "paper colour": ("paper", list(PAPERS), "{}"),
    "digit spacing, % of height (< 0: touching)": ("spacing", [-0.08, -0.04, 0.0, 0.04, 0.1, 0.2], "{:+.0%}"),
}


def level_scenes(glyphs: GlyphSource, look: Look, digits: int, seed: int) -> list[Scene]:
    """Scenes of ``look`` from seeds ``seed``, ``seed + 1``, … until they hold ``digits`` digits."""
    if look.height > 110:  # big digits: fewer numbers fit
        look = replace(look, numbers=(1, 1 if look.height > 200 else 2))
    out: list[Scene] = []
    total = 0
    for k in range(10 * digits):
        if total >= digits:
            break
        scene = render(seed + k, glyphs, look)
        out.append(scene)
        total += len(scene.digits)
    return out


def run_sweeps(readers: dict[str, Reader], glyphs: GlyphSource, digits: int = 48,
               sweep: dict[str, tuple[str, list[Any], str]] | None = None) -> dict[str, Any]:
    """Each condition's curve (``sweep``, default all of CONDITIONS): per level, each reader's
    scene score (``SceneScore.as_dict``), the mean and lowest level of ours, the levels below target."""
    conditions: dict[str, Any] = {}
    levels_ours: list[float] = []
    below: list[str] = []
    for ci, (name, (field, levels, fmt)) in enumerate((sweep or CONDITIONS).items()):
        rows = []
        for value in levels:
            scenes = level_scenes(glyphs, replace(BASE, **{field: value}), digits, SWEEP_SEED + 1000 * ci)
            row: dict[str, Any] = {"level": value, "label": fmt.format(value)}
            for reader_name, reader in readers.items():
                row[reader_name] = score_scenes(reader, scenes).as_dict()
            rows.append(row)
            if "ours" in row:
                levels_ours.append(float(row["ours"]["e2e"]))
                if row["ours"]["e2e"] < LEVEL_TARGET:
                    below.append(f"{name} {row['label']}")
        conditions[name] = {"field": field, "levels": rows}
    return {"digits_per_level": digits, "conditions": conditions,
            "mean_e2e": round(float(np.mean(levels_ours)), 4) if levels_ours else None,
            "min_e2e": round(min(levels_ours), 4) if levels_ours else None,
            "levels": len(levels_ours), "below_target": below,
            "targets": {"level": LEVEL_TARGET, "mean": MEAN_TARGET}}


# --- the picture --------------------------------------------------------------------------

PANEL_W, PANEL_H, COLS = 250, 200, 5
Y_LO = 0.5  # the lowest percentage a panel shows; lower points sit on its floor
COLOURS = {"ours": (180, 90, 20), "bare": (150, 150, 150), "numbers": (60, 160, 60)}  # BGR


def write_sweeps_png(path: Path, sweeps: dict[str, Any]) -> None:
    """All curves on one image: a panel per condition, digits read right (ours, bare) and
    numbers read exactly (ours) against the level; the 92% target as a red line."""
    names = list(sweeps["conditions"])
    rows = max(1, (len(names) + COLS - 1) // COLS)
    top = 46
    img = np.full((top + rows * PANEL_H, COLS * PANEL_W, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    title = (f"digit-edge sweeps: digits read right vs one condition ({sweeps['digits_per_level']} digits a level;"
             f" mean {100 * (sweeps['mean_e2e'] or 0):.1f}%)")
    cv2.putText(img, title, (8, 18), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    x = 8
    for key, what in (("ours", "ours: digits read right"), ("bare", "bare reader"), ("numbers", "ours: numbers exact")):
        cv2.line(img, (x, 34), (x + 20, 34), COLOURS[key], 2, cv2.LINE_AA)
        cv2.putText(img, what, (x + 25, 38), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        x += 35 + cv2.getTextSize(what, font, 0.4, 1)[0][0]
    cv2.line(img, (x, 34), (x + 20, 34), (0, 0, 220), 1)
    cv2.putText(img, "92% target", (x + 25, 38), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for i, name in enumerate(names):
        _panel(img, (i % COLS) * PANEL_W, top + (i // COLS) * PANEL_H, name, sweeps["conditions"][name]["levels"])
    if not cv2.imwrite(str(path), img):
        raise OSError(f"{path}: cannot write PNG")


def _panel(img: np.ndarray, x0: int, y0: int, name: str, levels: list[dict[str, Any]]) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    left, right, top, bottom = x0 + 34, x0 + PANEL_W - 10, y0 + 22, y0 + PANEL_H - 34
    cv2.putText(img, name, (x0 + 6, y0 + 14), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (right, bottom), (200, 200, 200), 1)

    def y_of(v: float) -> int:
        return round(bottom - (max(Y_LO, min(1.0, v)) - Y_LO) / (1 - Y_LO) * (bottom - top))

    for v in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        tick = f"{100 * v:.0f}" if v > Y_LO else f"<{100 * v:.0f}"  # lower points sit on the floor
        cv2.putText(img, tick, (x0 + 4, y_of(v) + 4), font, 0.32, (90, 90, 90), 1, cv2.LINE_AA)
    cv2.line(img, (left, y_of(LEVEL_TARGET)), (right, y_of(LEVEL_TARGET)), (0, 0, 220), 1)
    n = len(levels)
    xs = [round(left + 8 + i * (right - left - 16) / max(1, n - 1)) for i in range(n)]
    for i, row in enumerate(levels):
        label = str(row["label"])
        w = cv2.getTextSize(label, font, 0.3, 1)[0][0]
        cv2.putText(img, label, (xs[i] - w // 2, bottom + 12 + 10 * (i % 2 if n > 6 else 0)), font, 0.3,
                    (60, 60, 60), 1, cv2.LINE_AA)
    for key, field in (("bare", "e2e"), ("numbers", "numbers_exact"), ("ours", "e2e")):
        reader = "ours" if key == "numbers" else key
        if not levels or reader not in levels[0]:
            continue
        pts = [(xs[i], y_of(float(row[reader][field]))) for i, row in enumerate(levels)]
        for a, b in itertools.pairwise(pts):
            cv2.line(img, a, b, COLOURS[key], 2 if key == "ours" else 1, cv2.LINE_AA)
        for i, p in enumerate(pts):
            low = key == "ours" and levels[i]["ours"]["e2e"] < LEVEL_TARGET
            cv2.circle(img, p, 4 if low else 2, (0, 0, 220) if low else COLOURS[key], -1, cv2.LINE_AA)

"""Rebuild ``glyphs.png``, the demo source's sprite sheet, from HwD-1000.

Not part of the daemon (this folder is not a package, and the file is not installed). Run it
from the project's root when the choice of glyphs changes::

    python edge/demo/make_sheet.py ../shared/data/hwd1000

The sheet is 10 columns (digits 0-9) by 3 rows (variants) of 28x28 greyscale cells, black
ink on white, copied unchanged from the HwD-1000 images listed in ``PICKS``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

CELL = 28
# HwD-1000 image numbers (img/<digit>-NNN.png) per digit: medium-to-bold strokes, plain shapes
# (no crossed sevens), so the shipped model reads them and the demo's readings are right.
PICKS: dict[int, tuple[int, int, int]] = {
    0: (2, 6, 14),
    1: (6, 13, 19),
    2: (3, 9, 14),
    3: (4, 8, 16),
    4: (2, 12, 17),
    5: (4, 8, 12),
    6: (2, 8, 18),
    7: (2, 13, 21),
    8: (2, 10, 14),
    9: (3, 12, 16),
}


def build_sheet(hwd_dir: Path) -> np.ndarray:
    rows = len(PICKS[0])
    sheet = np.full((rows * CELL, 10 * CELL), 255, np.uint8)
    for digit, numbers in PICKS.items():
        for row, number in enumerate(numbers):
            path = hwd_dir / "img" / f"{digit}-{number:03d}.png"
            glyph = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if glyph is None or glyph.shape != (CELL, CELL):
                raise SystemExit(f"{path}: missing or not a {CELL}x{CELL} image")
            sheet[row * CELL : (row + 1) * CELL, digit * CELL : (digit + 1) * CELL] = glyph
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hwd1000", type=Path, help="the HwD-1000 folder (with img/)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("glyphs.png"))
    args = parser.parse_args()
    sheet = build_sheet(args.hwd1000)
    if not cv2.imwrite(str(args.out), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        sys.exit(f"{args.out}: cannot write")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

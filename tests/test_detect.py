"""Detection on real image files rendered from the HwD-1000 glyphs: what is found, where,
and what the whole pipeline reads — numbers, touching digits, ruled and squared paper,
broken strokes, clutter, and frames that are empty, tiny or huge."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from edge.config import Config, ConfigError, DetectConfig, load_config
from edge.recognition.classify import Classifier
from edge.recognition.detect import find_regions
from edge.recognition.pipeline import Pipeline
from edge.recognition.split import pick_alternatives, split_group
from edge.types import Box, Region
from tests.imaging import DATA_DIR, draw_number, paper, save

Canvas = npt.NDArray[np.float32]
Truth = list[tuple[int, int, int, int]]

pytestmark = pytest.mark.skipif(not (DATA_DIR / "hwd1000").exists(), reason=f"no evaluation data in {DATA_DIR}")


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(Classifier(), Config())


def photo(tmp_path: Path, canvas: Canvas, name: str = "page.jpg") -> npt.NDArray[np.uint8]:
    """Through a real JPEG file, as a camera or `predict` would deliver it."""
    image = cv2.imread(str(save(tmp_path / name, canvas)), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def gray_of(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)  # type: ignore[no-any-return]


def matched(found: list[Box], truth: Truth) -> int:
    """How many true boxes have a found box with IoU >= 0.5."""
    return sum(any(Box(*t).iou(f) >= 0.5 for f in found) for t in truth)


def read(pipeline: Pipeline, image: npt.NDArray[np.uint8]) -> list[str]:
    return [n.value for n in pipeline.process(image).numbers]


def test_number_found_digit_by_digit_and_read(tmp_path: Path, pipeline: Pipeline) -> None:
    canvas = paper(640, 480, seed=1)
    truth = draw_number(canvas, "3852", 150, 180, 70, seed=4)
    image = photo(tmp_path, canvas)
    regions = find_regions(gray_of(image), DetectConfig())
    assert len(regions) == 4
    assert matched([r.box for r in regions], truth) == 4
    for r in regions:
        assert r.mask is not None and r.mask.shape == (r.box.h, r.box.w) and r.mask.dtype == np.uint8
        assert set(np.unique(r.mask)) <= {0, 255} and r.mask.any()
    assert read(pipeline, image) == ["3852"]


def test_two_lines_and_two_sizes(tmp_path: Path, pipeline: Pipeline) -> None:
    canvas = paper(640, 480, seed=2)
    truth = draw_number(canvas, "60", 80, 60, 150, seed=5)
    truth += draw_number(canvas, "947", 330, 330, 36, seed=6)
    image = photo(tmp_path, canvas)
    assert matched([r.box for r in find_regions(gray_of(image), DetectConfig())], truth) == 5
    assert read(pipeline, image) == ["60", "947"]


@pytest.mark.parametrize(("text", "spacing", "seed"), [("59", -0.06, 8), ("2580", -0.03, 8)])
def test_touching_digits_are_split(tmp_path: Path, pipeline: Pipeline, text: str, spacing: float, seed: int) -> None:
    canvas = paper(640, 480, seed=3)
    truth = draw_number(canvas, text, 120, 170, 80, seed=seed, spacing=spacing)
    image = photo(tmp_path, canvas)
    whole = find_regions(gray_of(image), DetectConfig(split_touching=False))
    assert len(whole) < len(text), "the test needs digits that really touch"
    result = pipeline.process(image)
    assert [n.value for n in result.numbers] == [text]
    assert matched([d.box for d in result.digits], truth) == len(text)


def test_a_long_string_of_touching_digits_is_not_taken_for_a_dash(tmp_path: Path, pipeline: Pipeline) -> None:
    """Six touching digits make one blob four times wider than tall (a cheque's "250007"):
    it is cut into digits, not dropped as an underline."""
    canvas = paper(640, 480, seed=3)
    truth = draw_number(canvas, "250007", 60, 170, 60, seed=1, spacing=-0.05)
    image = photo(tmp_path, canvas)
    whole = find_regions(gray_of(image), DetectConfig(split_touching=False))
    assert len(whole) == 1 and whole[0].box.w > 3 * whole[0].box.h, "the test needs one blob wider than 3x its height"
    result = pipeline.process(image)
    assert matched([d.box for d in result.digits], truth) >= 4
    assert result.numbers and result.numbers[0].value.startswith("25")


def test_cut_points_are_chosen_by_what_the_segments_read() -> None:
    """A lattice of 4 cut points: the path whose segments read surest wins over the
    whole, and over a path through a point that leaves a poor segment."""
    class P:
        def __init__(self, confidence: float) -> None:
            self.confidence = confidence

    def seg(x: int, w: int, span: tuple[int, int]) -> Region:
        return Region(Box(x, 0, w, 40), group=0, parts=0, span=span)

    lattice = [Region(Box(0, 0, 60, 40), group=0, parts=1, prior=0.0, span=(0, 3)),
               seg(0, 28, (0, 1)), seg(0, 40, (0, 2)), seg(28, 32, (1, 3)), seg(40, 20, (2, 3)),
               Region(Box(90, 0, 20, 40), group=1)]
    assert pick_alternatives(lattice, [P(0.4), P(0.97), P(0.95), P(0.98), P(0.3), P(0.9)]) == [1, 3, 5]
    assert pick_alternatives(lattice, [P(0.4), P(0.3), P(0.97), P(0.5), P(0.96), P(0.9)]) == [2, 4, 5]
    assert pick_alternatives(lattice, [P(0.99), P(0.3), P(0.5), P(0.5), P(0.4), P(0.9)]) == [0, 5]


# Each of these is misread with detect.turn_upright off (the digits turned, or the row split).
@pytest.mark.parametrize(("text", "angle", "seed"),
                         [("4725", -25, 1), ("4725", -25, 2), ("4725", 30, 2), ("4725", 30, 3), ("3861", -25, 0),
                          ("5093", 30, 0)])
def test_a_turned_sheet_is_read_upright(tmp_path: Path, pipeline: Pipeline, text: str, angle: float,
                                        seed: int) -> None:
    """A sheet turned by 25-30°: its digits are turned too, beyond what the model learnt.
    The row's direction says which way is up; the boxes come back in the photo's pixels."""
    canvas = paper(640, 480, seed=1)
    truth = draw_number(canvas, text, 200, 200, 60, seed=seed)
    turn = cv2.getRotationMatrix2D((320, 240), angle, 1.0)
    canvas = cv2.warpAffine(canvas, turn, (640, 480), borderMode=cv2.BORDER_REFLECT)
    image = photo(tmp_path, canvas)
    result = pipeline.process(image)
    assert [n.value for n in result.numbers] == [text]
    off = Pipeline(pipeline.classifier, Config(detect=DetectConfig(turn_upright=False))).process(image)
    assert [n.value for n in off.numbers] != [text], "the test needs a turn the reader cannot take as it is"
    for (x, y, w, h), digit in zip(truth, result.digits, strict=True):
        cx, cy = turn @ np.array([x + w / 2, y + h / 2, 1.0])
        assert abs(digit.box.cx - cx) < 0.25 * h and abs(digit.box.cy - cy) < 0.25 * h, (digit.box, cx, cy)


def rule(canvas: Canvas, step: int, vertical: bool, angle_deg: float = 0.0, dark: float = 0.55) -> None:
    """Blue-grey paper ruling across the whole sheet (lines multiply the paper)."""
    h, w = canvas.shape[:2]
    lines = np.zeros((h, w), np.uint8)
    slope = np.tan(np.radians(angle_deg))
    for p in range(-max(h, w), 2 * max(h, w), step):
        if vertical:
            cv2.line(lines, (p, 0), (p - round(slope * h), h), 255, 2)
        else:
            cv2.line(lines, (0, p), (w, p + round(slope * w)), 255, 2)
    tint = np.array([1.0, 1.0 - 0.6 * dark, 1.0 - dark], np.float32)  # BGR: blue lines
    canvas *= np.where(lines[..., None] > 0, tint, 1.0)


@pytest.mark.parametrize("grid", [False, True], ids=["ruled", "squared"])
def test_paper_lines_crossing_digits_are_removed(tmp_path: Path, pipeline: Pipeline, grid: bool) -> None:
    canvas = paper(640, 480, seed=4)
    rule(canvas, 28, vertical=False, angle_deg=4.0)
    if grid:
        rule(canvas, 28, vertical=True, angle_deg=4.0)
    truth = draw_number(canvas, "7391", 140, 190, 64, seed=8)
    image = photo(tmp_path, canvas)
    regions = find_regions(gray_of(image), DetectConfig())
    # No stray pieces of ruling, and every digit one region, not cut in two by a line.
    assert len(regions) == 4
    assert matched([r.box for r in regions], truth) == 4
    assert read(pipeline, image) == ["7391"]
    # Without line removal the ruling swallows the digits.
    assert matched([r.box for r in find_regions(gray_of(image), DetectConfig(remove_lines=False))], truth) < 4


def test_broken_strokes_are_merged(tmp_path: Path) -> None:
    canvas = paper(400, 300, seed=5)
    truth = draw_number(canvas, "58", 100, 90, 90, seed=9)
    for x, y, w, h in truth:  # a pen that skipped: a gap right across each digit
        canvas[y + h // 2 - 2 : y + h // 2 + 2, x - 2 : x + w + 2] = canvas[5:9, 5 : w + 9]
    image = photo(tmp_path, canvas)
    gray = gray_of(image)
    assert len(find_regions(gray, DetectConfig(merge_broken=False))) > 2, "the gaps must break the digits"
    regions = find_regions(gray, DetectConfig())
    assert len(regions) == 2
    assert matched([r.box for r in regions], truth) == 2


def test_a_fives_loose_bar_is_part_of_it(tmp_path: Path, pipeline: Pipeline) -> None:
    """A "5" whose flag was written as a separate stroke, off the body's top corner, then a "6"."""
    canvas = paper(300, 200, seed=3)
    ink, x, y = (50, 45, 45), 100, 50
    cv2.line(canvas, (x + 26, y + 4), (x + 62, y), ink, 4, cv2.LINE_AA)  # the bar
    cv2.line(canvas, (x + 4, y + 16), (x + 2, y + 44), ink, 4, cv2.LINE_AA)  # the stem
    cv2.ellipse(canvas, (x + 14, y + 62), (18, 20), 0, -140, 140, ink, 4, cv2.LINE_AA)  # the belly
    # A "6" just right of the bar's end: the bar is by its top corner too, but runs away from it.
    cv2.ellipse(canvas, (x + 112, y + 44), (40, 30), 0, 180, 270, ink, 4, cv2.LINE_AA)
    cv2.circle(canvas, (x + 92, y + 62), 18, ink, 4, cv2.LINE_AA)
    image = photo(tmp_path, canvas)
    five, six = sorted(find_regions(gray_of(image), DetectConfig()), key=lambda r: r.box.x)
    assert five.box.y <= y and five.box.x2 >= x + 62, f"the bar is not in {five.box}"
    assert six.box.x >= x + 62
    assert read(pipeline, image) == ["56"]


def test_a_cut_that_leaves_no_digit_is_not_offered() -> None:
    """A wide "0" with a long low tail: cutting it in two leaves the tail, no digit."""
    mask = np.zeros((40, 72), np.uint8)
    cv2.ellipse(mask, (56, 20), (13, 18), 0, 0, 360, 255, 3)
    cv2.line(mask, (2, 36), (44, 30), 255, 3)
    offered = split_group(Box(0, 0, 72, 40), mask, DetectConfig(), alternatives=True)
    assert [piece.parts for piece in offered] == [1]


def test_specks_lines_blobs_and_sheet_edges_are_ignored(tmp_path: Path) -> None:
    canvas = paper(640, 480, seed=6)
    rng = np.random.default_rng(0)
    for _ in range(40):
        cv2.circle(canvas, (int(rng.integers(20, 620)), int(rng.integers(20, 460))), int(rng.integers(1, 3)),
                   (60, 60, 60), -1)
    cv2.line(canvas, (60, 400), (560, 385), (40, 40, 40), 3)  # an underline
    cv2.ellipse(canvas, (470, 150), (70, 50), 20, 0, 360, (70, 60, 60), -1)  # a thumb
    canvas[:, :70] = (90, 70, 50)  # the desk beyond the sheet's edge
    image = photo(tmp_path, canvas)
    assert find_regions(gray_of(image), DetectConfig()) == []


def test_rims_of_soft_dark_blobs_and_the_desk_are_not_digits(tmp_path: Path) -> None:
    """Soft-edged thumbs or stains and a blurred sheet edge: their rims are ink-dark next to
    the paper but have no paper on their other side; the old detector read them as "1"s."""
    canvas = paper(640, 480, seed=12)
    truth = draw_number(canvas, "47", 300, 300, 70, seed=3)
    for centre, axes, dark in (((150, 150), (90, 60), 0.6), ((460, 140), (60, 45), 0.45),
                               ((150, 380), (50, 70), 0.7)):
        blob = np.zeros((480, 640), np.float32)
        cv2.ellipse(blob, centre, axes, 30.0, 0, 360, 1.0, -1)
        canvas *= 1.0 - cv2.GaussianBlur(blob, (0, 0), 3)[..., None] * dark
    desk = np.zeros((480, 640), np.float32)
    cv2.fillPoly(desk, [np.array([(560, 0), (640, 0), (640, 480), (600, 480)], np.int32)], 1.0)
    beyond = cv2.GaussianBlur(desk, (0, 0), 1.0)[..., None]
    canvas = canvas * (1 - beyond) + np.array([60, 80, 100], np.float32) * beyond
    regions = find_regions(gray_of(photo(tmp_path, canvas)), DetectConfig())
    assert len(regions) == 2
    assert matched([r.box for r in regions], truth) == 2


def test_tilted_sheet_in_a_shadow(tmp_path: Path, pipeline: Pipeline) -> None:
    canvas = paper(640, 480, seed=7)
    draw_number(canvas, "406", 200, 190, 72, seed=10)
    canvas[:, 320:] *= 0.55  # a hard shadow across the middle of the number
    turn = cv2.getRotationMatrix2D((320, 240), 12, 1.0)
    canvas = cv2.warpAffine(canvas, turn, (640, 480), borderMode=cv2.BORDER_REFLECT)
    assert read(pipeline, photo(tmp_path, canvas)) == ["406"]


@pytest.mark.parametrize("shape", [(1, 1), (7, 9), (480, 640), (2, 3000)])
@pytest.mark.parametrize("value", [0, 255])
def test_blank_and_degenerate_frames_give_nothing(shape: tuple[int, int], value: int) -> None:
    assert find_regions(np.full(shape, value, np.uint8), DetectConfig()) == []


def test_noise_alone_gives_no_digits(pipeline: Pipeline) -> None:
    rng = np.random.default_rng(1)
    frame = np.clip(rng.normal(200, 6, (480, 640)), 0, 255).astype(np.uint8)
    assert pipeline.process(frame).digits == ()


def test_huge_frame_is_analysed_downscaled_boxes_in_frame_pixels(tmp_path: Path) -> None:
    canvas = paper(4000, 3000, seed=8)
    truth = draw_number(canvas, "25", 1400, 1100, 420, seed=11)
    regions = find_regions(gray_of(photo(tmp_path, canvas)), DetectConfig())
    assert len(regions) == 2
    assert matched([r.box for r in regions], truth) == 2
    for r in regions:
        assert r.mask is not None and r.mask.shape == (r.box.h, r.box.w)


def test_classifier_picks_whole_or_cut() -> None:
    """Group 0 is offered whole and cut in two; the surer reading wins, with the shape's prior."""
    class P:
        def __init__(self, confidence: float) -> None:
            self.confidence = confidence

    wide = [Region(Box(0, 0, 60, 40), group=0, parts=1, prior=0.5), Region(Box(0, 0, 30, 40), group=0, parts=2),
            Region(Box(30, 0, 30, 40), group=0, parts=2), Region(Box(90, 0, 20, 40), group=1)]
    assert pick_alternatives(wide, [P(0.3), P(0.99), P(0.98), P(0.9)]) == [1, 2, 3]
    assert pick_alternatives(wide, [P(0.99), P(0.6), P(0.5), P(0.9)]) == [0, 3]


def test_detect_keys_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("detect:\n  min_contrast: 1.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"detect -> min_contrast"):
        load_config(path)

"""What real photographs do that our scenes did not: tight crops, digits filling the frame,
chisel markers and hairlines, faint pencil, chalk on a board, printed cells, tiny and huge
digits, turned sheets. Each case is a real image file rendered from HwD-1000 glyphs (never
trained on), and the tuning sets of real photos in ../shared/data/real are read whole."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from edge.config import Config, DetectConfig
from edge.recognition.classify import Classifier
from edge.recognition.pipeline import Pipeline
from tests.imaging import DATA_DIR, draw_number, ink_on_paper, paper, pen_glyph, save

pytestmark = pytest.mark.skipif(not (DATA_DIR / "hwd1000").exists(), reason=f"no evaluation data in {DATA_DIR}")
Image = npt.NDArray[np.uint8]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


@pytest.fixture(scope="module")
def still(classifier: Classifier) -> Pipeline:
    return Pipeline(classifier, Config(), still=True)


@pytest.fixture(scope="module")
def stream(classifier: Classifier) -> Pipeline:
    return Pipeline(classifier, Config())


def through_file(tmp_path: Path, canvas: npt.NDArray[np.float32], name: str = "photo.jpg") -> Image:
    image = cv2.imread(str(save(tmp_path / name, canvas, quality=92)), cv2.IMREAD_COLOR)
    assert image is not None
    return image  # type: ignore[no-any-return]


def value(pipeline: Pipeline, image: Image) -> str:
    return "".join(d.digit.__str__() for d in pipeline.process(image).digits)


LABELS = (0, 2, 3, 4, 5, 7, 8, 9)  # a "1" or "6" alone can be read either way by shape


@pytest.mark.parametrize("label", LABELS)
def test_tight_crop_is_read_whole_in_a_still_and_flagged(tmp_path: Path, still: Pipeline, stream: Pipeline,
                                                         label: int) -> None:
    image = through_file(tmp_path, ink_on_paper(pen_glyph(label, 160, 9, seed=label), margin=0))
    result = still.process(image)
    assert [d.digit for d in result.digits] == [label]
    assert result.digits[0].clipped
    # In a camera stream a digit cut by the frame's edge is not guessed at, but counted.
    frame = ink_on_paper(pen_glyph(label, 160, 9, seed=label), margin=160)[:, 180:]
    streamed = stream.process(through_file(tmp_path, frame, "frame.jpg"))
    assert streamed.digits == ()
    assert streamed.clipped == 1


@pytest.mark.parametrize("label", LABELS)
def test_digit_filling_the_frame(tmp_path: Path, still: Pipeline, label: int) -> None:
    image = through_file(tmp_path, ink_on_paper(pen_glyph(label, 300, 14, seed=label), margin=4))
    assert value(still, image) == str(label)


@pytest.mark.parametrize(("pen_frac", "height"), [(0.02, 300), (0.06, 150), (0.15, 120), (0.25, 100)])
def test_pen_widths_from_hairline_to_chisel_marker(tmp_path: Path, stream: Pipeline, pen_frac: float,
                                                   height: int) -> None:
    """2-25% of the digit's height; a hairline on a big digit must not fall into pieces."""
    canvas = paper(5 * height + 40, 2 * height, seed=3)
    for i, label in enumerate(LABELS[:4]):
        ink = pen_glyph(label, height, max(1.5, pen_frac * height), seed=10 + i)
        h, w = ink.shape
        x, y = 40 + i * (5 * height) // 4, height - h // 2
        canvas[y : y + h, x : x + w] *= (1.0 - 0.85 * ink)[:, :, None]
    digits = stream.process(through_file(tmp_path, canvas)).digits
    right = sum(1 for d, want in zip(sorted(digits, key=lambda d: d.box.x), LABELS[:4], strict=False)
                if d.digit == want)
    assert len(digits) == 4, [d.digit for d in digits]
    assert right >= 3


def test_faint_pencil_of_30_grey_levels(tmp_path: Path, still: Pipeline) -> None:
    read = [value(still, through_file(tmp_path, ink_on_paper(pen_glyph(label, 90, 4, seed=label), margin=40,
                                                             contrast=30.0, seed=label), f"p{label}.jpg"))
            for label in LABELS]
    assert sum(r == str(label) for r, label in zip(read, LABELS, strict=True)) >= len(LABELS) - 1, read


def test_chalk_on_a_dark_board(tmp_path: Path, classifier: Classifier) -> None:
    canvas = paper(640, 480, seed=5)
    draw_number(canvas, "4096", 120, 180, 90, seed=2)
    board = 255.0 - canvas * 0.9  # light strokes on a dark, unevenly lit board
    image = through_file(tmp_path, board)
    auto = Pipeline(classifier, Config())
    assert [n.value for n in auto.process(image).numbers] == ["4096"]
    forced = Pipeline(classifier, Config(detect=DetectConfig(polarity="dark_on_light")))
    assert [n.value for n in forced.process(image).numbers] != ["4096"]


def test_digits_in_printed_cells(tmp_path: Path, stream: Pipeline) -> None:
    """A form: one digit per cell of a printed grid with thick lines."""
    canvas = paper(700, 300, seed=7)
    text = "305927"
    cell = 110
    for i, ch in enumerate(text):
        ink = pen_glyph(int(ch), 60, 5, seed=i)
        h, w = ink.shape
        x, y = 20 + i * cell + (cell - w) // 2, 90 + (cell - h) // 2
        canvas[y : y + h, x : x + w] *= (1.0 - 0.85 * ink)[:, :, None]
    for i in range(len(text) + 1):
        cv2.line(canvas, (20 + i * cell, 90), (20 + i * cell, 90 + cell), (60, 60, 60), 4)
    for yy in (90, 90 + cell):
        cv2.line(canvas, (20, yy), (20 + len(text) * cell, yy), (60, 60, 60), 4)
    digits = stream.process(through_file(tmp_path, canvas)).digits
    assert "".join(str(d.digit) for d in digits) == text


@pytest.mark.parametrize("height", [14, 400])
def test_tiny_and_huge_digits(tmp_path: Path, still: Pipeline, height: int) -> None:
    reads = []
    for label in LABELS:
        ink = pen_glyph(label, height, max(2.0, 0.1 * height), seed=label)
        if height <= 20:
            ink = cv2.resize(pen_glyph(label, 4 * height, 0.4 * height, seed=label), (ink.shape[1], ink.shape[0]),
                             interpolation=cv2.INTER_AREA)
        reads.append(value(still, through_file(tmp_path, ink_on_paper(ink, margin=height // 2 + 10, seed=label),
                                               f"d{label}.jpg")))
    assert sum(r == str(label) for r, label in zip(reads, LABELS, strict=True)) >= len(LABELS) - 1, reads


@pytest.mark.parametrize("angle", [-30, 30])
def test_a_sheet_turned_by_30_degrees(tmp_path: Path, stream: Pipeline, angle: int) -> None:
    canvas = paper(640, 480, seed=11)
    draw_number(canvas, "2580", 170, 190, 80, seed=4, spacing=0.5)
    turn = cv2.getRotationMatrix2D((320, 240), angle, 1.0)
    turned = cv2.warpAffine(canvas, turn, (640, 480), borderMode=cv2.BORDER_REFLECT)
    digits = stream.process(through_file(tmp_path, turned)).digits
    assert sorted(d.digit for d in digits) == sorted([2, 5, 8, 0])


def test_paper_texture_and_specks_are_no_digits(tmp_path: Path, stream: Pipeline) -> None:
    rng = np.random.default_rng(2)
    canvas = paper(640, 480, seed=2)
    fibres = cv2.GaussianBlur(rng.normal(0, 9, (480, 640)).astype(np.float32), (0, 0), 1.2)
    canvas += fibres[:, :, None]
    for _ in range(60):  # specks of dust and pencil dots
        x, y, r = int(rng.integers(10, 630)), int(rng.integers(10, 470)), int(rng.integers(1, 3))
        cv2.circle(canvas, (x, y), r, (90, 90, 90), -1)
    assert stream.process(through_file(tmp_path, canvas)).digits == ()


REAL = DATA_DIR / "real"


@pytest.mark.skipif(not REAL.exists(), reason=f"no real photos in {REAL}")
@pytest.mark.parametrize(("name", "floor"), [("grid_scans_minichazer", 0.93), ("paper_photos_single", 0.89),
                                           ("orand_car_a_cheques", 0.70)])
def test_real_tuning_sets_hold_up(still: Pipeline, name: str, floor: float) -> None:
    """The real tuning sets, read as `predict` reads them (digits read right; the shipped
    default model; measured 97.1 / 95.7 / 69.4% when these floors were set, the cheques 73.7% when
    theirs was raised to 0.70 with the ring cut)."""
    from edge.bench.accuracy import load_real_set, score_real

    score = score_real(still, load_real_set(REAL / name))
    assert score.e2e >= floor, score.as_dict()


@pytest.mark.parametrize("seed", range(4))
def test_linked_zeros_written_in_one_stroke(tmp_path: Path, still: Pipeline, seed: int) -> None:
    """"5000" as cheque amounts are written: the zeros' loops overlap, so no column cut parts
    them (the lattice used to read such arcs as 6s, 2s and 1s); each loop is cut out by its hole."""
    rng = np.random.default_rng(seed)
    height, pen = 60, 4.0
    five = pen_glyph(5, height, pen, seed=seed)
    zeros = [pen_glyph(0, height, pen, seed=seed * 3 + k) for k in range(3)]
    width = five.shape[1] + 12 + sum(z.shape[1] for z in zeros)
    ink = np.zeros((height + 4, width), np.float32)
    ink[:five.shape[0], :five.shape[1]] = five
    x = five.shape[1] + 12
    for z in zeros:
        ink[:z.shape[0], x:x + z.shape[1]] = np.maximum(ink[:z.shape[0], x:x + z.shape[1]], z)
        x += int(z.shape[1] * rng.uniform(0.72, 0.8))  # the next loop starts inside this one
    ys, xs = np.nonzero(ink > 0.1)
    ink = ink[: ys.max() + 1, : xs.max() + 1]
    image = through_file(tmp_path, ink_on_paper(ink, margin=30, seed=seed))
    assert value(still, image) == "5000"

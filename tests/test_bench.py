"""The bench's own instruments, run for real on tiny inputs (real rendering, real inference)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.bench import add_arguments, measure
from edge.bench.accuracy import IOU, SceneScore, decode, scene_numbers
from edge.bench.render2 import Look, render
from edge.bench.scenes import Scene, Truth
from edge.bench.sweeps import BASE, run_sweeps, write_sweeps_png
from edge.types import Box, Digit, FrameResult, Number

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MLP = Path(__file__).resolve().parents[1] / "edge" / "models" / "digits_mlp_int8.tflite"
EASY = replace(BASE, blur=0.0, noise=1.0, texture=0.2, lamp=0.0, vignette=0.0, jpeg=95, numbers=(1, 2), count=(1, 3))

needs_data = pytest.mark.skipif(not (DATA / "mnist.npz").exists(), reason="evaluation data not found")


@pytest.fixture(scope="module")
def glyphs():  # type: ignore[no-untyped-def]
    from edge.bench.scenes import mnist_glyphs

    return mnist_glyphs(str(DATA / "mnist.npz"), "tune")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args([*argv, "--model", str(MLP)])


@needs_data
def test_real_counts_a_folder_in_the_real_layout(tmp_path: Path, glyphs) -> None:  # type: ignore[no-untyped-def]
    truth: dict[str, list[dict[str, object]]] = {}
    for i, seed in enumerate((11, 12, 13)):
        scene = render(seed, glyphs, EASY)
        (tmp_path / f"img_{i}.jpg").write_bytes(scene.jpeg)
        truth[f"img_{i}.jpg"] = [{"label": t.label, "box": t.box.to_list()} for t in scene.digits]
    (tmp_path / "truth.json").write_text(json.dumps(truth), encoding="utf-8")
    figures = measure(_args("--real", str(tmp_path), "--data", str(tmp_path / "absent")))  # --data not needed
    digits = sum(len(v) for v in truth.values())
    assert set(figures) >= {"real"} and "scenes" not in figures and "crops" not in figures
    for reader in ("ours", "bare"):
        row = figures["real"][reader][tmp_path.name]
        assert row["images"] == 3 and row["digits"] == digits
        assert {"recall", "e2e", "extra_per_image", "numbers_exact", "scenes_exact"} <= set(row)
    ours = figures["real"]["ours"][tmp_path.name]
    assert ours["recall"] >= 0.8 and ours["e2e"] >= 0.75  # clean, easy digits


@needs_data
def test_real_reads_tight_crops_as_predict_does(tmp_path: Path, glyphs) -> None:  # type: ignore[no-untyped-def]
    """A photo of one digit cropped to its ink (the digit touches the image's edge) is read
    whole by ``predict``; the bench's real-photo figure must be that, not the camera stream's
    rule that leaves an edge-cut digit out."""
    truth: dict[str, list[dict[str, object]]] = {}
    for i, seed in enumerate((21, 22, 23, 24)):
        scene = render(seed, glyphs, EASY)
        image = decode(scene.jpeg)
        t = scene.digits[0]
        crop = image[t.box.y:t.box.y + t.box.h, t.box.x:t.box.x + t.box.w]
        crop = cv2.resize(crop, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(tmp_path / f"tight_{i}.png"), crop)
        truth[f"tight_{i}.png"] = [{"label": t.label, "box": [0, 0, crop.shape[1], crop.shape[0]]}]
    (tmp_path / "truth.json").write_text(json.dumps(truth), encoding="utf-8")
    figures = measure(_args("--real", str(tmp_path), "--skip", "bare"))
    assert figures["real"]["ours"][tmp_path.name]["e2e"] >= 0.75


@needs_data
def test_sweep_levels_give_figures_and_a_png(tmp_path: Path, glyphs) -> None:  # type: ignore[no-untyped-def]
    from edge.bench.baseline import BarePipeline
    from edge.config import Config
    from edge.recognition.classify import Classifier
    from edge.recognition.pipeline import Pipeline

    config, classifier = Config(), Classifier(str(MLP), threads=1)
    readers = {"ours": Pipeline(classifier, config), "bare": BarePipeline(classifier, 0.5, 0.6)}
    sweeps = run_sweeps(readers, glyphs, digits=6, sweep={"camera tilt, degrees": ("tilt", [0, 40], "{:d}")})
    levels = sweeps["conditions"]["camera tilt, degrees"]["levels"]
    assert [row["label"] for row in levels] == ["0", "40"]
    assert all(row["ours"]["digits"] >= 6 and 0.0 <= row["bare"]["e2e"] <= 1.0 for row in levels)
    assert sweeps["levels"] == 2 and sweeps["mean_e2e"] == pytest.approx(
        np.mean([row["ours"]["e2e"] for row in levels]), abs=1e-4)
    png = tmp_path / "sweeps.png"
    write_sweeps_png(png, sweeps)
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] > 100 and img.shape[1] > 500


@needs_data
@pytest.mark.parametrize("look", [EASY, replace(EASY, tilt=40.0, rotation=20.0), replace(EASY, chalk=0.0)])
def test_second_renderer_truth_boxes_lie_on_ink(glyphs, look: Look) -> None:  # type: ignore[no-untyped-def]
    scene = render(7, glyphs, look)
    gray = cv2.cvtColor(decode(scene.jpeg), cv2.COLOR_BGR2GRAY).astype(np.int32)
    paper = float(np.median(gray))
    ink = np.abs(gray - paper) > 40  # chalk is lighter than its board, pen darker than paper
    assert scene.digits and len(scene.values) == len({t.number for t in scene.digits})
    for t in scene.digits:
        b = t.box
        inside = ink[b.y : b.y2, b.x : b.x2]
        assert inside.mean() > 0.03  # the box holds ink...
        # ...right up to its edges
        assert inside[:3].any() and inside[-3:].any() and inside[:, :3].any() and inside[:, -3:].any()
        stray = ink.copy()
        for other in scene.digits:  # ink in no box at all, next to this one
            stray[other.box.y : other.box.y2, other.box.x : other.box.x2] = False
        ring = stray[max(0, b.y - 4) : b.y2 + 4, max(0, b.x - 4) : b.x2 + 4].sum()
        assert ring <= 0.1 * inside.sum()  # and little of the digit's ink lies outside it


def test_numbers_read_exactly_on_a_hand_built_scene() -> None:
    boxes = [Box(10, 10, 20, 30), Box(34, 10, 20, 30), Box(200, 10, 20, 30)]
    scene = Scene(0, b"", (Truth(1, boxes[0], 0), Truth(2, boxes[1], 0), Truth(7, boxes[2], 1)), ("12", "7"), ())
    numbers = scene_numbers(scene)
    assert numbers == [("12", Box(10, 10, 44, 30)), ("7", boxes[2])]

    def result(read: list[tuple[int, Box]], groups: list[list[int]]) -> FrameResult:
        digits = tuple(Digit(d, 0.9, b) for d, b in read)
        nums = tuple(Number("".join(str(digits[i].digit) for i in g), 0.8,
                            Box.union_all([digits[i].box for i in g]), tuple(digits[i] for i in g)) for g in groups)
        return FrameResult(digits, nums, 1.0, candidates=tuple(b for _, b in read))

    score = SceneScore()
    truth = [(t.label, t.box) for t in scene.digits]
    # all right: both numbers exact
    assert score.tally(result(list(zip((1, 2, 7), boxes, strict=True)), [[0, 1], [2]]), truth, numbers, IOU)
    # "12" read as "17": one number exact, the scene not
    assert not score.tally(result(list(zip((1, 7, 7), boxes, strict=True)), [[0, 1], [2]]), truth, numbers, IOU)
    # every digit right, but read as one number "127": neither number is exact
    score.tally(result(list(zip((1, 2, 7), boxes, strict=True)), [[0, 1, 2]]), truth, numbers, IOU)
    # "7" read at another place: not exact (it does not overlap its box)
    score.tally(result([(1, boxes[0]), (2, boxes[1]), (7, Box(400, 300, 20, 30))], [[0, 1], [2]]), truth, numbers,
                IOU)
    assert (score.numbers, score.numbers_exact) == (8, 2 + 1 + 0 + 1)
    assert (score.scenes, score.scenes_exact, score.digits, score.read) == (4, 2, 12, 3 + 2 + 3 + 2)
    assert score.as_dict()["numbers_exact"] == pytest.approx(4 / 8)

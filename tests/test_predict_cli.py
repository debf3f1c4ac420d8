"""`digit-edge predict` as a user runs it: real image files, the JSON contract, bad input."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.types import Box
from tests.daemon import DIGIT_EDGE
from tests.imaging import REPO, draw_number, paper, save

DIGIT_KEYS = {"digit", "confidence", "box"}
NUMBER_KEYS = {"value", "confidence", "box"}


def predict(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DIGIT_EDGE, "predict", *args], capture_output=True, text=True, timeout=120, cwd=cwd,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, int, int, int]]]:
    """Two lines: 4107 then 25, JPEG, light falling off across the sheet."""
    canvas = paper(640, 480, seed=3)
    boxes = draw_number(canvas, "4107", 120, 120, 64, seed=1)
    boxes += draw_number(canvas, "25", 300, 300, 56, seed=2)
    return save(tmp_path_factory.mktemp("page") / "meter.jpg", canvas), boxes


def test_json_contract_on_a_two_line_page(page: tuple[Path, list[tuple[int, int, int, int]]]) -> None:
    path, truth = page
    proc = predict("--json", str(path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert set(obj) == {"image", "digits", "numbers", "latency_ms"}
    assert obj["image"] == str(path)
    assert [n["value"] for n in obj["numbers"]] == ["4107", "25"]
    assert [d["digit"] for d in obj["digits"]] == [4, 1, 0, 7, 2, 5]
    for d, t in zip(obj["digits"], truth, strict=True):
        assert set(d) == DIGIT_KEYS and 0.0 <= d["confidence"] <= 1.0
        assert Box(*d["box"]).iou(Box(*t)) > 0.6, (d, t)
    for n in obj["numbers"]:
        assert set(n) == NUMBER_KEYS and len(n["box"]) == 4
    assert obj["latency_ms"] > 0


def test_human_line_and_annotated_image(page: tuple[Path, list[tuple[int, int, int, int]]], tmp_path: Path) -> None:
    path, _ = page
    proc = predict("--annotate", str(tmp_path / "ann"), str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{path}: 4107 25  (confidence ")
    out = cv2.imread(str(tmp_path / "ann" / "meter.annotated.jpg"))
    assert out is not None and out.shape == (480, 640, 3)
    assert not np.array_equal(out, cv2.imread(str(path)))  # boxes were drawn


def write_bad_inputs(d: Path) -> dict[str, Path]:
    files = {
        "zero": d / "zero.jpg",
        "text": d / "notes.png",
        "truncated": d / "truncated.jpg",
        "tiny": d / "tiny.png",
        "black": d / "black.png",
        "white": d / "white.png",
        "huge": d / "huge.png",
        "missing": d / "missing.jpg",
    }
    files["zero"].write_bytes(b"")
    files["text"].write_text("this is not a picture\n")
    _, buf = cv2.imencode(".jpg", np.full((200, 200, 3), 128, np.uint8))
    files["truncated"].write_bytes(buf.tobytes()[:40])
    cv2.imwrite(str(files["tiny"]), np.full((1, 1), 255, np.uint8))
    cv2.imwrite(str(files["black"]), np.zeros((480, 640), np.uint8))
    cv2.imwrite(str(files["white"]), np.full((480, 640), 255, np.uint8))
    cv2.imwrite(str(files["huge"]), np.full((10000, 10000), 230, np.uint8))
    return files


def test_bad_images_get_their_own_error_and_the_rest_are_read(
    page: tuple[Path, list[tuple[int, int, int, int]]], tmp_path: Path
) -> None:
    path, _ = page
    bad = write_bad_inputs(tmp_path)
    order = [bad["zero"], path, bad["text"], bad["truncated"], bad["missing"], bad["tiny"], bad["black"],
             bad["white"], bad["huge"], path]
    proc = predict("--json", *map(str, order))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "4 of 10 images could not be read" in proc.stderr
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["image"] for o in objs] == [str(p) for p in order]
    errors = {Path(o["image"]).name: o.get("error") for o in objs}
    assert errors["zero.jpg"] == "empty file (0 bytes)"
    assert "not an image" in errors["notes.png"]
    assert "not an image" in errors["truncated.jpg"]
    assert errors["missing.jpg"] == "no such file"
    for name in ("tiny.png", "black.png", "white.png", "huge.png"):
        assert errors[name] is None
        assert next(o for o in objs if o["image"].endswith(name))["digits"] == []
    assert [n["value"] for n in objs[1]["numbers"]] == ["4107", "25"]
    assert objs[-1]["numbers"] == objs[1]["numbers"]


def test_missing_model_is_one_clear_line(tmp_path: Path, page: tuple[Path, list[tuple[int, int, int, int]]]) -> None:
    proc = predict("--model", str(tmp_path / "nope.tflite"), str(page[0]))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"digit-edge: error: {tmp_path / 'nope.tflite'}: model file not found"


def test_corrupt_model_is_one_clear_line(tmp_path: Path, page: tuple[Path, list[tuple[int, int, int, int]]]) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00garbage" * 100)
    proc = predict("--model", str(bad), str(page[0]))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{bad}: not a usable TFLite model" in proc.stderr

"""`digit-edge predict` as a user runs it: real image files, the JSON contract, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    assert set(obj) == {"image", "digits", "numbers", "latency_ms", "model"}
    assert obj["model"] == "digits_mlp_int8+digits_cnn_int8"  # the default pair, as in `run`'s readings
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


def grey_png(path: Path, width: int, height: int, level: int = 230) -> Path:
    """A flat grey PNG written row by row (zlib streaming): a huge image without holding it in memory."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    comp = zlib.compressobj(9)
    row = b"\0" + bytes([level]) * width
    with path.open("wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        data = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
        f.write(chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def peak_rss_mb(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``digit-edge predict ARGS`` from a fresh parent, so ru_maxrss is this child's alone."""
    code = ("import resource, subprocess, sys, json\n"
            f"p = subprocess.run({[DIGIT_EDGE, 'predict', *args]!r}, capture_output=True, text=True, timeout=300)\n"
            "print(json.dumps([p.returncode, p.stdout, p.stderr, "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=320,
                         check=True)
    rc, stdout, stderr, rss_kb = json.loads(out.stdout)
    return subprocess.CompletedProcess(args, rc, stdout, stderr), rss_kb / 1024


def test_a_fifo_is_an_error_naming_it_and_the_next_image_is_read(
    page: tuple[Path, list[tuple[int, int, int, int]]], tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)  # nobody ever writes to it: opening it for reading would wait forever
    proc = predict("--json", str(fifo), str(page[0]))
    assert proc.returncode == 1, proc.stderr
    first, second = (json.loads(line) for line in proc.stdout.splitlines())
    assert first == {"image": str(fifo), "error": "is a FIFO (named pipe), not an image file"}
    assert [n["value"] for n in second["numbers"]] == ["4107", "25"]


def test_a_20000_px_png_is_refused_from_its_header_without_decoding(tmp_path: Path) -> None:
    huge = grey_png(tmp_path / "huge.png", 20000, 20000)
    proc, rss = peak_rss_mb("--json", str(huge))
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error.startswith("20000x20000 pixels is too large to decode") and "scale it down" in error
    assert rss < 300, rss  # the decoded image alone would be 400 MB as grey, 1.2 GB as colour


def test_a_large_png_is_decoded_reduced_in_bounded_memory(tmp_path: Path) -> None:
    big = grey_png(tmp_path / "big.png", 10000, 10000)
    proc, rss = peak_rss_mb("--json", str(big))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["digits"] == []
    assert rss < 400, rss  # 100 MB of grey while decoding; 300 MB as colour before


def test_a_large_jpeg_is_decoded_reduced_and_boxes_are_in_its_pixels(tmp_path: Path) -> None:
    canvas = paper(6400, 4800, seed=5)
    truth = draw_number(canvas, "37", 1800, 1800, 640, seed=4)
    path = save(tmp_path / "big.jpg", canvas)
    proc = predict("--json", str(path))
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert [n["value"] for n in obj["numbers"]] == ["37"]
    for d, t in zip(obj["digits"], truth, strict=True):
        assert Box(*d["box"]).iou(Box(*t)) > 0.5, (d, t)


def test_digits_drawn_only_in_the_alpha_channel_are_read(tmp_path: Path) -> None:
    """A drawing app's export: black everywhere, the strokes opaque, the paper transparent."""
    canvas = paper(640, 480, seed=3, gradient=0.0)
    draw_number(canvas, "4107", 120, 160, 64, seed=1)
    grey = np.clip(canvas, 0, 255).astype(np.uint8)
    ink = 255 - (grey.min(axis=2) if grey.ndim == 3 else grey)
    bgra = np.zeros((480, 640, 4), np.uint8)
    bgra[:, :, 3] = ink
    path = tmp_path / "alpha.png"
    assert cv2.imwrite(str(path), bgra)
    plain = cv2.imread(str(path))
    assert plain is not None and plain.max() == 0  # what plain decoding sees: nothing
    proc = predict("--json", str(path))
    assert proc.returncode == 0, proc.stderr
    assert [n["value"] for n in json.loads(proc.stdout)["numbers"]] == ["4107"]


def test_the_json_names_the_model_that_read_it(page: tuple[Path, list[tuple[int, int, int, int]]]) -> None:
    path, _ = page
    proc = predict("--json", "--model", str(REPO / "models" / "digits_cnn_int8.tflite"), str(path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["model"] == "digits_cnn_int8"

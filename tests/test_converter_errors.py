"""Bad input to `digit-convert`: one line on stderr naming the file and the problem, a
non-zero exit, no traceback (unless --debug). Keras models of the wrong shape: test_converter_keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.converter_helpers import assert_one_line_error, convert, mnist_npz, shipped_model

__all__ = ["shipped_model"]  # a fixture


def test_missing_data_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "mnist.npz"
    proc = convert("train", "--data", missing, "--out", tmp_path / "out", "--epochs", "1")
    assert_one_line_error(proc, str(missing), "not found")
    assert not (tmp_path / "out").exists()


def test_npz_without_the_mnist_arrays(tmp_path: Path, shipped_model: Path) -> None:
    bad = tmp_path / "digits.npz"
    np.savez(bad, images=np.zeros((3, 28, 28), np.uint8), labels=np.zeros(3, np.uint8))
    proc = convert("evaluate", shipped_model, "--data", bad)
    line = assert_one_line_error(proc, str(bad), "x_train", "y_test")
    assert "images" in line  # says what it found instead


def test_npz_that_is_not_an_npz(tmp_path: Path) -> None:
    bad = tmp_path / "mnist.npz"
    bad.write_text("not a zip archive")
    proc = convert("train", "--data", bad, "--out", tmp_path / "out")
    assert_one_line_error(proc, str(bad), "not a readable .npz")


def test_npz_with_images_of_the_wrong_size(tmp_path: Path, shipped_model: Path) -> None:
    bad = tmp_path / "small.npz"
    x, y = np.zeros((4, 16, 16), np.uint8), np.zeros(4, np.uint8)
    np.savez(bad, x_train=x, y_train=y, x_test=x, y_test=y)
    proc = convert("evaluate", shipped_model, "--data", bad)
    assert_one_line_error(proc, str(bad), "x_train", "[4, 16, 16]", "(N, 28, 28)")


def test_corrupt_tflite_model(tmp_path: Path) -> None:
    bad = tmp_path / "digits.tflite"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    proc = convert("evaluate", bad, "--data", mnist_npz())
    assert_one_line_error(proc, str(bad), "not a usable TFLite model")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "digits.tflite"
    bad.write_bytes(b"garbage")
    proc = convert("--debug", "evaluate", bad, "--data", mnist_npz())
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr


def test_missing_model_file(tmp_path: Path) -> None:
    proc = convert("evaluate", tmp_path / "absent.tflite", "--data", mnist_npz())
    assert_one_line_error(proc, str(tmp_path / "absent.tflite"), "not found")


def test_corrupt_h5_model(tmp_path: Path) -> None:
    bad = tmp_path / "my_model.h5"
    bad.write_bytes(b"this is not HDF5" * 64)
    proc = convert("convert", bad, "--representative", mnist_npz())
    assert_one_line_error(proc, str(bad), "not an HDF5 file")


def test_convert_with_missing_representative_data(tmp_path: Path) -> None:
    model = tmp_path / "my_model.h5"
    model.write_bytes(b"\x89HDF\r\n\x1a\n")
    missing = tmp_path / "calib.npz"
    proc = convert("convert", model, "--representative", missing)
    assert_one_line_error(proc, str(missing), "not found")

"""Shared bits of the converter tests: data paths, running ``digit-convert`` as a user does."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon import installed
from tests.imaging import DATA_DIR, REPO

DIGIT_CONVERT = installed("digit-convert")

# The converter tests need TensorFlow (the `[train]` extra, installed by the test command).
needs_tf = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                              reason="needs TensorFlow: pip install -e '.[train]'")


def mnist_npz() -> Path:
    path = DATA_DIR / "mnist.npz"
    if not path.is_file():
        pytest.fail(f"{path}: MNIST not found; set DIGIT_EDGE_DATA to the shared data folder",
                    pytrace=False)
    return path


def convert(*args: str | Path, cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DIGIT_CONVERT, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def run_python(code: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


@pytest.fixture
def shipped_model() -> Path:
    path = REPO / "models" / "digits_mlp_int8.tflite"
    assert path.is_file(), f"{path}: the shipped model is missing"
    return path


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]

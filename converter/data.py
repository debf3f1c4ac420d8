"""MNIST in Keras' npz layout: loading with checks that name the file and the problem.

Training and evaluation take the data set's path as a flag; without it they fall back to
``keras.datasets.mnist.load_data()`` (Keras' own download and cache).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from converter import ConverterError
from edge.recognition.normalize import fit_to_mnist, ink_from_crop

log = logging.getLogger(__name__)

KEYS = ("x_train", "y_train", "x_test", "y_test")
Images = npt.NDArray[np.uint8]
Labels = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Mnist:
    """uint8 images (N, 28, 28), white ink on black, and int64 labels 0..9."""

    x_train: Images
    y_train: Labels
    x_test: Images
    y_test: Labels
    source: str
    sha256: str = ""  # of the npz file, so a report says exactly which data it used

    def limited(self, limit: int | None, seed: int = 0) -> Mnist:
        """A class-balanced random subset of ``limit`` training samples (test set unchanged)."""
        if limit is None or limit >= len(self.y_train):
            return self
        rng = np.random.default_rng(seed)
        per_class = [rng.permutation(np.flatnonzero(self.y_train == c)) for c in range(10)]
        take = np.sort(np.concatenate([idx[: -(-limit // 10)] for idx in per_class])[:limit])
        return dataclasses.replace(self, x_train=self.x_train[take], y_train=self.y_train[take])


def check_file(path: Path, what: str = "data file") -> None:
    """Fail early, before any slow import, when an input file is missing or unreadable."""
    if not path.exists():
        raise ConverterError(f"{path}: {what} not found")
    if not path.is_file():
        raise ConverterError(f"{path}: {what} is not a file")


def load_mnist(path: Path | None) -> Mnist:
    """MNIST from an npz (``x_train``, ``y_train``, ``x_test``, ``y_test``) or Keras' download."""
    if path is None:
        return _download()
    check_file(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in KEYS if k not in npz.files]
            if missing:
                raise ConverterError(
                    f"{path}: missing array(s) {', '.join(missing)}; an MNIST npz needs "
                    f"{', '.join(KEYS)} (found: {', '.join(npz.files) or 'none'})")
            arrays = {k: npz[k] for k in KEYS}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ConverterError(f"{path}: not a readable .npz file ({_short(exc)})") from None
    mnist = _checked(arrays, str(path))
    return dataclasses.replace(mnist, sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def _download() -> Mnist:
    try:
        import keras  # lazy: Keras only when no --data file was given

        (xtr, ytr), (xte, yte) = keras.datasets.mnist.load_data()
    except Exception as exc:  # the download can fail in many ways; say which one
        raise ConverterError(
            f"keras.datasets.mnist: download failed ({_short(exc)}); pass --data MNIST.npz"
        ) from None
    return _checked({"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte},
                    "keras.datasets.mnist")


def _checked(arrays: dict[str, np.ndarray], source: str) -> Mnist:
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim == 2 and x.shape[1] == 784:
            x = x.reshape(-1, 28, 28)
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ConverterError(f"{source}: x_{split} has shape {list(x.shape)}; need (N, 28, 28)")
        if y.ndim != 1 or len(y) != len(x):
            raise ConverterError(
                f"{source}: y_{split} has shape {list(y.shape)}; need ({len(x)},) labels")
        if len(y) == 0 or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() > 9:
            raise ConverterError(f"{source}: y_{split} must hold integer labels 0..9")
        if x.dtype != np.uint8:
            if not np.issubdtype(x.dtype, np.number):
                raise ConverterError(f"{source}: x_{split} has dtype {x.dtype}; need uint8 pixels")
            # Floats in [0, 1] are accepted too (the range a Keras model is fed).
            x = x * 255.0 if x.max() <= 1.0 else x
            x = np.clip(np.round(x), 0, 255)
        arrays[f"x_{split}"] = np.ascontiguousarray(x, dtype=np.uint8)
        arrays[f"y_{split}"] = y.astype(np.int64)
    return Mnist(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], source)


def load_image_set(csv_path: Path) -> tuple[Images, Labels]:
    """Labelled digit images (``image,label`` CSV), dark ink on light paper, each made
    MNIST-style by the daemon's own normaliser (``ink_from_crop`` → ``fit_to_mnist``)."""
    check_file(csv_path, "image list")
    crops, labels = [], []
    try:
        with csv_path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConverterError(f"{csv_path}: unreadable image list ({_short(exc)})") from None
    if not rows or not {"image", "label"} <= set(rows[0]):
        raise ConverterError(f"{csv_path}: need a CSV with the columns image,label")
    for line, row in enumerate(rows, start=2):
        img = cv2.imread(str(csv_path.parent / row["image"]), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ConverterError(f"{csv_path}:{line}: cannot read image {row['image']}")
        try:
            label = int(row["label"])
        except ValueError:
            raise ConverterError(f"{csv_path}:{line}: label {row['label']!r} is not 0..9") from None
        crops.append(fit_to_mnist(ink_from_crop(img)))
        labels.append(label)
    return np.stack(crops), np.asarray(labels, np.int64)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

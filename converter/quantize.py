"""Keras digit classifier → full-integer int8 TFLite, calibrated on real MNIST digits.

Input and output are int8 too, so the daemon's interpreter runs integer kernels end to end;
with calibration data in [0, 1] the input comes out as scale 1/255, zero point -128.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from converter import ConverterError
from converter.data import Images, _short, check_file

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ACCEPTED_INPUTS = ((28, 28), (784,), (28, 28, 1))


_quiet = False


def quiet_tensorflow(debug: bool = False) -> None:
    """Keep TensorFlow's start-up chatter off stderr (call before it is imported)."""
    global _quiet
    if debug:
        return
    _quiet = True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", module=r"(keras|tensorflow|absl|h5py)(\.|$)")
    for name in ("tensorflow", "absl", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # TensorFlow 2.21's C++ side logs at load, before absl reads TF_CPP_MIN_LOG_LEVEL
    # ("All log messages before absl::InitializeLog() ...", the oneDNN notice): load it
    # now, with stderr closed, since train and convert import it next anyway.
    with _silenced():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """The TFLite converter prints to stdout (Python) and stderr (C++); hide both unless
    --debug. Its failures still arrive as exceptions."""
    if not _quiet:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_keras_model(path: Path) -> keras.Model:
    """Load a ``.keras`` or legacy ``.h5`` model and check it is a 10-class 28x28 classifier."""
    check_file(path, "model file")
    suffix = path.suffix.lower()
    head = path.read_bytes()[:8]
    if suffix in (".h5", ".hdf5") and head != _HDF5_MAGIC:
        raise ConverterError(f"{path}: not an HDF5 file (corrupt or not a Keras .h5 model)")
    if suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ConverterError(f"{path}: not a .keras archive (corrupt or not a Keras model)")
    if suffix not in (".h5", ".hdf5", ".keras"):
        raise ConverterError(f"{path}: unknown model format {suffix!r}; need .h5 or .keras")
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file; report, don't crash
        raise ConverterError(f"{path}: cannot load the Keras model ({_short(exc)})") from None
    check_classifier(model, path)
    return model


def check_classifier(model: keras.Model, path: Path | str) -> None:
    """One 28x28 / 784 / 28x28x1 input and one 10-wide output (11: the 11th is *not a
    digit*), or a clear error."""
    inputs, outputs = list(model.inputs), list(model.outputs)
    in_shapes = [tuple(t.shape[1:]) for t in inputs]
    out_shapes = [tuple(t.shape[1:]) for t in outputs]
    if len(inputs) != 1 or in_shapes[0] not in ACCEPTED_INPUTS:
        raise ConverterError(
            f"{path}: model input shape {_fmt(inputs)}; need one input of "
            "(None, 28, 28), (None, 784) or (None, 28, 28, 1)")
    if len(outputs) != 1 or out_shapes[0] not in ((10,), (11,)):
        raise ConverterError(
            f"{path}: model output shape {_fmt(outputs)}; need one output of (None, 10) — "
            "a 10-class digit classifier (or (None, 11), the 11th 'not a digit')")


def _fmt(tensors: list[Any]) -> str:
    shapes = [str(tuple(t.shape)).replace(",)", ")") for t in tensors]
    return ", ".join(shapes) if shapes else "none"


def ensure_probabilities(model: keras.Model, samples: Images) -> keras.Model:
    """Append a softmax when the model ends in logits, so confidences mean something."""
    import keras

    probs = np.asarray(model(as_model_input(model, samples[:64]), training=False))
    if probs.min() >= -1e-4 and np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        return model
    log.warning("the model's outputs are not probabilities; appending a softmax")
    out = keras.layers.Softmax(name="probabilities")(model.outputs[0])
    return keras.Model(model.inputs, out, name=model.name)


def as_model_input(model: keras.Model, x: Images) -> np.ndarray:
    shape = tuple(model.inputs[0].shape[1:])
    return (x.astype(np.float32) / 255.0).reshape(len(x), *shape)


def to_int8_tflite(model: keras.Model, samples: Images) -> bytes:
    """Full-integer int8 TFLite bytes; ``samples`` (N, 28, 28) uint8 calibrate the ranges."""
    import tensorflow as tf

    calib = as_model_input(model, samples)

    def representative() -> Iterator[list[np.ndarray]]:
        for i in range(len(calib)):
            yield [calib[i : i + 1]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    try:
        with _silenced():
            return bytes(converter.convert())
    except Exception as exc:  # the converter's errors are long MLIR dumps; keep the first line
        raise ConverterError(f"{model.name}: int8 conversion failed ({_short(exc)})") from None


def representative_sample(x: Images, y: np.ndarray, n: int = 1000, seed: int = 0) -> Images:
    """``n`` training samples, the same number from each class (10 digits, or 11 with
    *not a digit*), for calibration."""
    rng = np.random.default_rng(seed)
    classes = max(10, int(y.max()) + 1)
    per = max(1, n // classes)
    idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per] for c in range(classes)])
    sample: Images = x[np.sort(idx)]
    return sample

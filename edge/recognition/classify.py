"""The int8 TFLite classifier: one batched invoke per frame.

The interpreter comes from the first runtime found: ``ai_edge_litert`` (maintained, numpy 2,
aarch64 wheels), ``tflite_runtime`` (last release 2.14, a fallback for 32-bit Pi OS), then
``tensorflow.lite`` (deprecated; only when TensorFlow happens to be installed anyway).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

MODEL_NAME = "digits_mlp_int8"
# The shipped models by the name ``classify.model`` gives (edge.config.ClassifyConfig).
SHIPPED = {"cnn": "digits_cnn_int8", "mlp": MODEL_NAME}
ENSEMBLE, ENSEMBLE_OF = "both", ("mlp", "cnn")  # ``classify.model: both``: the two read together
DEFAULT_MODEL = ENSEMBLE
NOT_DIGIT = 10  # index of the "not a digit" output of 11-output models
_RUNTIMES = (
    ("ai_edge_litert.interpreter", "ai_edge_litert"),
    ("tflite_runtime.interpreter", "tflite_runtime"),
    ("tensorflow.lite", "tensorflow.lite"),
)


# A line the TFLite runtime prints itself (tflite/minimal_logging: "INFO: ..." to fd 2).
_RUNTIME_LINE = re.compile(r"^(VERBOSE|INFO|WARNING|ERROR): (.*)$")
_STDERR_LOCK = threading.Lock()  # fd 2 is process-wide: one capture at a time


# Sidecar keys (written by converter/card.py) that describe() passes on, e.g. to MQTT `info`.
_DESCRIBED = ("mnist_test_accuracy", "float_accuracy", "agreement", "date", "converter_version", "accuracy")


class ModelError(Exception):
    """A model file that cannot be used; the message names the file and the problem."""


def default_model_path(model: str = "mlp") -> Path:
    """The shipped model file called ``model`` (``cnn`` or ``mlp``): inside the installed
    package, else the checkout's ``models/``."""
    if model not in SHIPPED:
        raise ModelError(f"{model!r}: no such shipped model (choose {' or '.join(sorted([*SHIPPED, ENSEMBLE]))})")
    file = f"{SHIPPED[model]}.tflite"
    here = Path(__file__).resolve().parents[1]  # edge/
    for candidate in (here / "models" / file, here.parent / "models" / file):
        if candidate.exists():
            return candidate
    return here.parent / "models" / file


def load_interpreter_class() -> tuple[Any, str]:
    """Return (Interpreter class, runtime name) from the first runtime that imports."""
    errors = []
    for module_name, label in _RUNTIMES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            errors.append(f"{label}: {exc}")
            continue
        return module.Interpreter, label
    raise ModelError(
        "no TFLite runtime found; install one with `pip install ai-edge-litert` "
        "(or tflite-runtime on 32-bit Raspberry Pi OS). Tried: " + "; ".join(errors)
    )


@contextlib.contextmanager
def runtime_output_logged() -> Iterator[None]:
    """Route what the runtime's C++ side prints on fd 2 meanwhile into our logging.

    The first ``allocate_tensors`` prints "INFO: Created TensorFlow Lite XNNPACK delegate for
    CPU." straight to fd 2, outside our log format (and into the journal as a bare line); no
    switch turns it off from Python. So fd 2 points at an in-memory file for that moment; then
    the runtime's INFO lines are logged at DEBUG, its warnings and errors at WARNING, and
    anything else (another thread's log line written meanwhile) is passed on to stderr unchanged.
    """
    with _STDERR_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no fd 2 at all: nothing to keep clean
            yield
            return
        capture = _memory_file()
        try:
            os.dup2(capture.fileno(), 2)
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            capture.close()
            _relay(text)


def _memory_file() -> Any:
    """A file in memory (Linux memfd: needs no writable /tmp in the service's sandbox)."""
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("digit-edge-stderr", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile()


def _relay(text: str) -> None:
    passed = []
    for line in text.splitlines():
        match = _RUNTIME_LINE.match(line)
        if match is None:
            passed.append(line)
        elif match.group(1) in ("VERBOSE", "INFO"):
            log.debug("TFLite runtime: %s", match.group(2))
        else:
            log.warning("TFLite runtime: %s", match.group(2))
    if passed:
        os.write(2, ("\n".join(passed) + "\n").encode())


def read_sidecar(model_path: Path) -> dict[str, Any]:
    """The model's facts (name, accuracy, ...) from ``<model>.json`` beside it, if present."""
    sidecar = model_path.with_suffix(".json")
    if not sidecar.exists():
        return {"name": model_path.stem}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s: model sidecar unreadable (%s); using the file name", sidecar, exc)
        return {"name": model_path.stem}
    return data if isinstance(data, dict) else {"name": model_path.stem}


@dataclass(frozen=True, slots=True)
class Prediction:
    """``digit``: the likeliest of 0–9; ``confidence``: its probability; ``not_digit``: the
    probability of "not a digit" (always 0 from a 10-output model)."""

    digit: int
    confidence: float
    not_digit: float = 0.0


class _Net:
    """One interpreter of one model file: loading, checking and one batched invoke."""

    def __init__(self, path: Path, threads: int) -> None:
        self.path = path
        if self.path.is_dir():
            inside = sorted(p.name for p in self.path.glob("*.tflite"))[:5]
            hint = f" (it holds {', '.join(inside)})" if inside else " (it holds no .tflite file)"
            raise ModelError(f"{self.path}: is a folder, not a model file; give the path of the .tflite file{hint}")
        if not self.path.is_file():
            raise ModelError(f"{self.path}: model file not found")
        interpreter_cls, self.runtime = load_interpreter_class()
        try:
            with runtime_output_logged():
                self._interp = interpreter_cls(model_path=str(self.path), num_threads=threads)
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.path}: not a usable TFLite model: {exc}") from None
        inp = self._interp.get_input_details()
        out = self._interp.get_output_details()
        if len(inp) != 1 or len(out) != 1:
            raise ModelError(f"{self.path}: expected one input and one output tensor")
        self._in, self._out = inp[0], out[0]
        shape = tuple(int(s) for s in self._in["shape"][1:])
        if int(np.prod(shape)) != 784 or int(self._out["shape"][-1]) not in (10, 11):
            raise ModelError(
                f"{self.path}: input {list(self._in['shape'])} / output {list(self._out['shape'])};"
                " need a 28x28 (or 784) input and 10 outputs (digits) or 11 (digits, not a digit)"
            )
        self.classes = int(self._out["shape"][-1])
        self._item_shape = shape
        self._batch = int(self._in["shape"][0])
        self._check_probabilities()
        self.info = read_sidecar(self.path)
        self.name = str(self.info.get("name", self.path.stem))

    def _check_probabilities(self) -> None:
        """Refuse a model whose outputs are not probabilities (one ending in logits, no softmax).

        ``min_confidence`` and "not a digit" compare probabilities; logits would pass a
        confidence of 0.41 or 7.3 through unnoticed. Three probe crops (blank, full, a bar)
        must each give outputs in 0..1 that sum to 1 (int8 rounding allowed for).
        """
        probes = np.zeros((3, 28, 28), np.uint8)
        probes[1] = 255
        probes[2, 4:24, 12:16] = 255
        out = self.probabilities(probes)
        sums = out.sum(axis=1)
        if np.all(np.isfinite(out)) and out.min() >= -0.01 and out.max() <= 1.01 and np.all(np.abs(sums - 1) <= 0.1):
            return
        raise ModelError(
            f"{self.path}: its outputs are not probabilities (on a blank crop they sum to {float(sums[0]):.3g}, "
            f"range {float(out.min()):.3g}..{float(out.max()):.3g}); the model must end in a softmax "
            "(`digit-convert convert` appends one to a model that ends in logits)"
        )

    def _resize(self, batch: int) -> None:
        if batch == self._batch:
            return
        self._interp.resize_tensor_input(self._in["index"], [batch, *self._item_shape], strict=False)
        self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        self._batch = batch

    def probabilities(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """(N, 28, 28) uint8 crops (white ink on black, 0..255) → (N, 10 or 11) probabilities."""
        n = int(crops.shape[0])
        if n == 0:
            return np.zeros((0, self.classes), np.float32)
        # Round the batch up to a power of two so the tensors are reallocated rarely.
        batch = 1 << (n - 1).bit_length()
        self._resize(batch)
        x = crops.reshape(n, *self._item_shape).astype(np.float32) / 255.0
        dtype = self._in["dtype"]
        if dtype in (np.int8, np.uint8):
            scale, zero = self._in["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        data = np.zeros((batch, *self._item_shape), dtype=dtype)
        data[:n] = x.astype(dtype)
        self._interp.set_tensor(self._in["index"], data)
        self._interp.invoke()
        y = self._interp.get_tensor(self._out["index"])[:n].reshape(n, self.classes)
        if self._out["dtype"] in (np.int8, np.uint8):
            scale, zero = self._out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return np.asarray(y, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "runtime": self.runtime, **{
            k: v for k, v in self.info.items() if k in _DESCRIBED
        }}


class Classifier:
    """Owns the interpreters; ``predict`` takes a stack of 28x28 uint8 MNIST-style crops.

    Models with 10 outputs (digits) or 11 (digits, then "not a digit") are accepted. With
    ``model_path`` that one model reads; without it the shipped model(s) that ``model``
    (``classify.model``) names: ``both`` runs the MLP and the CNN on the same crops and
    averages their probabilities (the MLP's "not a digit" counted as 0). The two err on
    different crops: on the real tuning sets the pair reads more than either alone, and
    on the independent renderer's scenes as much as the better one (docs/design.md).
    """

    def __init__(self, model_path: str | Path | None = None, threads: int = 1,
                 model: str = DEFAULT_MODEL) -> None:
        if model_path:
            paths = [Path(model_path)]
        elif model == ENSEMBLE:
            paths = [default_model_path(m) for m in ENSEMBLE_OF]
        else:
            paths = [default_model_path(model)]
        self._nets = [_Net(p, threads) for p in paths]
        first = self._nets[0]
        self.path = first.path  # the (first) model file; ``paths`` has all
        self.paths = tuple(n.path for n in self._nets)
        self.runtime = first.runtime
        self.classes = max(n.classes for n in self._nets)
        self.name = "+".join(n.name for n in self._nets)
        self.info = first.info if len(self._nets) == 1 else {"name": self.name}

    @property
    def input_dtype(self) -> Any:
        return self._nets[0]._in["dtype"]

    def probabilities(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """(N, 28, 28) uint8 crops (white ink on black, 0..255) → (N, 10 or 11) probabilities
        (the mean over the models when there are several)."""
        if len(self._nets) == 1:
            return self._nets[0].probabilities(crops)
        total = np.zeros((int(crops.shape[0]), self.classes), np.float32)
        for net in self._nets:
            total[:, : net.classes] += net.probabilities(crops)
        return total / np.float32(len(self._nets))

    def predict(self, crops: npt.NDArray[np.uint8]) -> list[Prediction]:
        probs = self.probabilities(crops)
        idx = probs[:, :NOT_DIGIT].argmax(axis=1)
        other = probs[:, NOT_DIGIT] if self.classes > NOT_DIGIT else np.zeros(len(probs), np.float32)
        return [Prediction(int(i), float(p[i]), float(o)) for i, p, o in zip(idx, probs, other, strict=True)]

    def predict_labels(self, crops: npt.NDArray[np.uint8], chunk: int = 256) -> npt.NDArray[np.int64]:
        """Digit labels (0–9, whatever "not a digit" says) for a large set (evaluation), in
        chunks so memory stays flat."""
        out: list[npt.NDArray[np.int64]] = []
        for start in range(0, len(crops), chunk):
            out.append(self.probabilities(crops[start : start + chunk])[:, :NOT_DIGIT].argmax(axis=1))
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def describe(self) -> dict[str, Any]:
        """Name, path and runtime (and the model card's figures) of the model; of a pair,
        also each model's own under ``models``."""
        if len(self._nets) == 1:
            return self._nets[0].describe()
        return {"name": self.name, "path": " + ".join(str(p) for p in self.paths), "runtime": self.runtime,
                "models": [n.describe() for n in self._nets]}


def stack_crops(crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.uint8]:
    if not crops:
        return np.zeros((0, 28, 28), np.uint8)
    return np.stack(crops).astype(np.uint8)

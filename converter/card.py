"""The model's facts, travelling with it: the sidecar JSON the daemon reads, the model card,
and a confusion-matrix picture (drawn with OpenCV; no plotting library needed)."""

from __future__ import annotations

import hashlib
import json
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from converter import __version__
from converter.evaluate import Evaluation
from edge.recognition.classify import load_interpreter_class


def sidecar(tflite: Path, name: str, training_data: str, architecture: str,
            evaluation: Evaluation, float_accuracy: float, agreement: float) -> dict[str, Any]:
    """The facts ``edge.recognition.classify`` reports (``describe()``, the MQTT ``info`` topic)."""
    inp = input_details(tflite)
    scale, zero = (float(v) for v in inp["quantization"])
    data = tflite.read_bytes()
    return {
        "name": name,
        "architecture": architecture,
        "format": "TFLite, full-integer int8 (int8 input and output)",
        "training_data": training_data,
        "mnist_test_accuracy": evaluation.accuracy,
        "float_accuracy": round(float_accuracy, 5),
        "agreement": round(agreement, 5),
        "test_samples": evaluation.samples,
        "per_class_accuracy": evaluation.per_class,
        "input": {
            "shape": [int(s) for s in inp["shape"]], "dtype": np.dtype(inp["dtype"]).name,
            "scale": scale, "zero_point": int(zero),
            "meaning": "28x28 MNIST-style crop, white ink on black, pixel/255",
        },
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "converter_version": __version__,
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def input_details(tflite: Path) -> dict[str, Any]:
    """The interpreter's own record of the input tensor (shape, dtype, quantisation)."""
    interpreter_cls, _ = load_interpreter_class()
    details: dict[str, Any] = interpreter_cls(model_path=str(tflite)).get_input_details()[0]
    return details


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_confusion_png(path: Path, confusion: list[list[int]], title: str) -> None:
    """A 10x10 heat map, counts in the cells, diagonal in green, errors in red."""
    conf = np.asarray(confusion, np.float64)
    cell, margin, top = 48, 40, 72
    size = (top + 10 * cell + 10, margin + 10 * cell + 10)
    img = np.full((*size, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, title, (8, 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "rows: true, columns: predicted", (8, 40), font, 0.4, (80, 80, 80), 1,
                cv2.LINE_AA)
    off_peak = max(1.0, float((conf - np.diag(np.diag(conf))).max()))
    for r in range(10):
        cv2.putText(img, str(r), (margin - 18, top + r * cell + 30), font, 0.5, (0, 0, 0), 1)
        cv2.putText(img, str(r), (margin + r * cell + 19, top - 8), font, 0.5, (0, 0, 0), 1)
        for c in range(10):
            x, y = margin + c * cell, top + r * cell
            n = conf[r, c]
            if r == c:
                color = (150, 220, 150)
            else:
                t = min(1.0, n / off_peak) if n else 0.0
                color = (int(255 - 200 * t), int(255 - 200 * t), 255)
            cv2.rectangle(img, (x, y), (x + cell - 2, y + cell - 2), color, -1)
            if n:
                text = str(int(n))
                w = cv2.getTextSize(text, font, 0.4, 1)[0][0]
                cv2.putText(img, text, (x + (cell - w) // 2, y + 28), font, 0.4, (0, 0, 0), 1,
                            cv2.LINE_AA)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"{path}: cannot write PNG")


def _card_parts(info: dict[str, Any], report: dict[str, Any]) -> tuple[dict[str, Any], str, str, str]:
    """What both cards show alike: the training report, per-class accuracy, the pen-digit
    row (if measured) and the input tensor in words."""
    per_class = " | ".join(f"{a * 100:.1f}" for a in info["per_class_accuracy"])
    extra = report.get("pen_digits")
    pen = (f"| {extra['data']} (pen on paper, via the daemon's normaliser; never trained on) "
           f"| {extra['accuracy'] * 100:.2f}% |\n") if extra else ""
    q = info["input"]
    input_text = (f"{q['shape']} {q['dtype']}, scale {q['scale']:.6f}, zero point "
                  f"{q['zero_point']} ({q['meaning']})")
    return report.get("training", {}), per_class, pen, input_text


def model_card(info: dict[str, Any], report: dict[str, Any], command: str,
               confusion: str = "confusion.png") -> str:
    """``README.md`` for a trained model: what it is, measured figures, how to reproduce.
    11-output models (the CNN) get their extra facts: parameters, the *not a digit* figures."""
    if "not_digit_recall" in info:
        return _cnn_card(info, report, command, confusion)
    train, per_class, pen, input_text = _card_parts(info, report)
    return f"""# Model card: {info['name']}

The seed project's MLP (`classify.model: mlp` in `digit-edge`'s configuration),
{info['architecture']},
trained with augmentation that prepares it for digits cut from camera frames, and
quantised to full-integer int8 TFLite.

| | |
| --- | --- |
| file | `{info['name']}.tflite`, {info['size_bytes'] / 1024:.0f} KB, sha256 `{info['sha256'][:16]}…` |
| input | {input_text} |
| output | 10 int8 probabilities (digits 0–9) |
| training data | {info['training_data']} |
| converter | digit-convert {info['converter_version']}, {info['date']} |

## Measured

| data | accuracy |
| --- | --- |
| MNIST test ({info['test_samples']}), int8, `digit-convert evaluate` | **{info['mnist_test_accuracy'] * 100:.2f}%** |
| MNIST test, float Keras model before quantisation | {info['float_accuracy'] * 100:.2f}% |
| float and int8 give the same digit | {info['agreement'] * 100:.2f}% of test samples |
{pen}
Per-class accuracy on MNIST test, digits 0–9 (%): {per_class}

![confusion matrix](confusion.png)

## Training

{train.get('summary', '')}

Reproduce (from the project's root, with the `[train]` extra installed):

```sh
{command}
```

The output directory then holds this card, the model, its sidecar, `confusion.png`,
`report.json` (configuration, per-epoch history, versions) and the float
`digits_mlp.keras`; `models/` ships the first four.

Training is seeded (`keras.utils.set_random_seed`, TensorFlow op determinism, numpy
generators per epoch), so the same command with the same library versions on the same kind
of CPU gives the same weights. To check the shipped file's figure:

```sh
digit-convert evaluate models/{info['name']}.tflite --data ../shared/data/mnist.npz
```

## Limits

- Trained on MNIST only: one style of handwriting (American census staff and students,
  1990s). Crops must be normalised the MNIST way (`edge.recognition.normalize`), as the daemon does.
- It always answers one of 0–9; a non-digit crop gets a digit too, usually with low
  confidence — the daemon's confidence threshold is what rejects it.
"""


def _macs(info: dict[str, Any]) -> str:
    """Older sidecars have no ``multiply_adds``."""
    macs = info.get("multiply_adds")
    return f"{macs:,}" if isinstance(macs, int) else "not recorded"


def _cnn_card(info: dict[str, Any], report: dict[str, Any], command: str, confusion: str) -> str:
    train, per_class, pen, input_text = _card_parts(info, report)
    input_text += "; the batch dimension is resized per frame"
    r = info["not_digit_recall"]
    def pct(v: float, digits: int = 2) -> str:
        return f"{v * 100:.{digits}f}%"

    out_dir = shlex.split(command)[shlex.split(command).index("--out") + 1] if "--out" in command else "out/train"
    return f"""# Model card: {info['name']}

A small convolutional digit classifier with an answer for *not a digit*:
{info['architecture']}, {info['parameters']:,} parameters, quantised to full-integer int8
TFLite. `digit-edge` picks it with `classify.model: cnn`. It reads the 10 digit outputs
for the digit (`Prediction.digit`, `confidence`) and output 10 as `Prediction.not_digit`;
the pipeline keeps a crop only when its digit's probability is at least
`classify.min_confidence` **and** above `not_digit`.

| | |
| --- | --- |
| file | `{info['name']}.tflite`, {info['size_bytes'] / 1024:.0f} KB, sha256 `{info['sha256'][:16]}…` |
| input | {input_text} |
| output | 11 int8 probabilities: digits 0–9, then 10 = not a digit |
| parameters | {info['parameters']:,} |
| cost | {_macs(info)} multiply-adds per crop |
| training data | {info['training_data']} |
| converter | digit-convert {info['converter_version']}, {info['date']} |

## Measured

| data | figure |
| --- | --- |
| MNIST test ({info['test_samples']}), int8, digit = argmax of outputs 0–9 | **{pct(info['mnist_test_accuracy'])}** |
| MNIST test, float Keras model before quantisation | {info['float_accuracy'] * 100:.2f}% |
| float and int8 give the same digit | {info['agreement'] * 100:.2f}% of test samples |
| MNIST test digits where *not a digit* is the top class | {info['mnist_test_not_digit'] * 100:.2f}% |
| unseen detector non-digits ({r['detector_not_digits']}, {r['scenes']} other scenes) \
answered *not a digit* | {pct(r['detector_recall'], 1)} |
| unseen detector digit crops ({r['detector_digits']}) read right / answered *not a digit* \
| {pct(r['detector_digits_accuracy'], 1)} / {pct(r['detector_digits_not_digit'], 1)} |
| fresh synthetic non-digits ({r['synthetic_not_digits']}) answered *not a digit* | {r['synthetic_recall'] * 100:.1f}% |
{pen}
Per-class accuracy on MNIST test, digits 0–9 (%): {per_class}

![confusion matrix]({confusion})

## Training

{train.get('summary', '')}

Reproduce (from the project's root — the source checkout: the scenes come from its
`edge/bench/` — with the `[train]` extra installed):

```sh
{command}
```

The harvested detector crops are cached in `out/cache/` (keyed by the digits and
settings), so a rerun skips the rendering. `{out_dir}/` then holds this card (`README.md`),
the model, its sidecar, `confusion.png`, `report.json` (configuration, per-epoch history,
versions) and the float `digits_cnn.keras`; `models/` ships the card as
`digits_cnn_int8.md`, the confusion matrix as
`digits_cnn_int8_confusion.png`, and the model with its sidecar. Training is seeded as the MLP's is.
To check the shipped file's figure:

```sh
digit-convert evaluate models/{info['name']}.tflite --data ../shared/data/mnist.npz
```

## Limits

- The digits are MNIST's (American census staff and students, 1990s) plus the same digits
  rendered into synthetic camera scenes; no real photograph, HwD-1000, USPS or
  `real/` image was trained on (those are evaluation sets).
- *Not a digit* knows what the detector cut from synthetic scenes and the synthetic marks
  and letters of `converter.nondigits`; letters that can be digits (O, I, l, S, Z, B, g, q,
  b, G) were never shown as non-digits, so they still read as digits.
- Crops must be normalised the MNIST way (`edge.recognition.normalize`), as the daemon does.
"""

"""A user's own Keras digit classifier (``.h5`` or ``.keras``) → int8 TFLite with a sidecar.

For example the original project's ``my_model.h5`` (Flatten 28x28 → Dense 300 → Dense 100 →
Dense 10 softmax, inputs in [0, 1]). The int8 model is calibrated on MNIST training digits
and scored on MNIST test through the daemon's interpreter code, next to its float twin.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from converter import ConverterError, card
from converter.data import Mnist
from converter.evaluate import evaluate_tflite
from converter.quantize import (
    as_model_input,
    ensure_probabilities,
    load_keras_model,
    representative_sample,
    to_int8_tflite,
)

log = logging.getLogger(__name__)


def convert_model(model_path: Path, out: Path, data: Mnist) -> dict[str, Any]:
    """Convert, evaluate, write ``out`` and ``out.with_suffix('.json')``; returns the sidecar."""
    if out.suffix != ".tflite":
        raise ConverterError(f"{out}: --out must name a .tflite file")
    model = ensure_probabilities(load_keras_model(model_path), data.x_test)
    tflite = to_int8_tflite(model, representative_sample(data.x_train, data.y_train, 1000))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(tflite)
    float_pred = np.asarray(model.predict(as_model_input(model, data.x_test), batch_size=1000,
                                          verbose=0)).argmax(axis=1)
    evaluation, int8_pred = evaluate_tflite(out, data.x_test, data.y_test, f"MNIST test ({data.source})")
    info = card.sidecar(
        out, out.stem, f"unknown (converted from {model_path.name})", describe_layers(model),
        evaluation, float((float_pred == data.y_test).mean()),
        float((float_pred == int8_pred).mean()))
    card.write_json(out.with_suffix(".json"), info)
    log.info("%s: wrote the int8 model and %s", out, out.with_suffix(".json").name)
    return info


def describe_layers(model: Any) -> str:
    """``Flatten → Dense 300 relu → ...`` from the layers that compute something."""
    parts = [f"input {list(model.inputs[0].shape[1:])}"]
    for layer in model.layers:
        cfg = layer.get_config()
        kind = type(layer).__name__
        if kind in ("InputLayer", "Dropout"):
            continue
        units = cfg.get("units") or cfg.get("filters") or ""
        act = cfg.get("activation", "")
        act = act if isinstance(act, str) and act != "linear" else ""
        parts.append(" ".join(str(p) for p in (kind, units, act) if p))
    return " → ".join(parts)

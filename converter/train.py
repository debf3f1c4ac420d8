"""Train the seed MLP on augmented MNIST, quantise it to int8, evaluate both, write the lot.

Outputs in ``--out``: ``digits_mlp.keras`` (float), ``digits_mlp_int8.tflite`` with its
sidecar ``digits_mlp_int8.json``, ``report.json``, ``confusion.png`` and a model card
``README.md``. Seeded: the same command on the same versions gives the same weights.
"""

from __future__ import annotations

import logging
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from converter import card
from converter.augment import Augment
from converter.data import Images, Labels, Mnist
from converter.evaluate import evaluate_tflite
from converter.feed import EpochFeeder
from converter.model import ARCHITECTURE, NAME, build_mlp
from converter.quantize import representative_sample, to_int8_tflite

log = logging.getLogger(__name__)
INT8_NAME = f"{NAME}_int8"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    batch_size: int = 128
    seed: int = 1
    learning_rate: float = 1e-3  # Adam, cosine decay to 1 % of it
    dropout: float = 0.1
    label_smoothing: float = 0.0
    augment: Augment | None = field(default_factory=Augment)
    validation: int = 0  # hold out this many training digits to watch (tuning only)
    workers: int = 1  # augmentation processes; 0 = in the training process


def train(data: Mnist, out: Path, cfg: TrainConfig, command: str,
          pen: tuple[Images, Labels, str] | None = None) -> dict[str, Any]:
    """Run the whole recipe; returns the report (also written to ``out/report.json``)."""
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    out.mkdir(parents=True, exist_ok=True)
    x, y, val = _split(data, cfg)
    feeder = EpochFeeder(x, cfg.augment, cfg.seed, cfg.workers if len(x) > 8000 else 0)
    try:
        feeder.prefetch(0)
        model = build_mlp(cfg.dropout)
        steps = math.ceil(len(x) / cfg.batch_size)
        schedule = keras.optimizers.schedules.CosineDecay(
            cfg.learning_rate, decay_steps=cfg.epochs * steps, alpha=0.01)
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
            metrics=["accuracy"])
        batches = _Batches(feeder, y, cfg.batch_size, cfg.seed, cfg.epochs)
        started = time.perf_counter()
        # A progress bar on a terminal, one line per epoch in a log.
        verbose = 1 if sys.stdout.isatty() else 2
        history = model.fit(batches, epochs=cfg.epochs, verbose=verbose, validation_data=val)
        seconds = time.perf_counter() - started
    finally:
        feeder.close()

    model.save(out / f"{NAME}.keras")
    float_pred = np.asarray(model.predict(data.x_test.astype(np.float32) / 255.0,
                                          batch_size=1000, verbose=0)).argmax(axis=1)
    float_acc = float((float_pred == data.y_test).mean())
    tflite = out / f"{INT8_NAME}.tflite"
    tflite.write_bytes(to_int8_tflite(model, representative_sample(x, y, 1000, cfg.seed)))
    evaluation, int8_pred = evaluate_tflite(tflite, data.x_test, data.y_test,
                                            f"MNIST test ({data.source})")
    agreement = float((int8_pred == float_pred).mean())
    info = card.sidecar(tflite, INT8_NAME, _training_data(data, cfg), ARCHITECTURE,
                        evaluation, float_acc, agreement)
    card.write_json(tflite.with_suffix(".json"), info)
    card.write_confusion_png(out / "confusion.png", evaluation.confusion,
                             f"{INT8_NAME} on MNIST test: {evaluation.accuracy * 100:.2f}%")
    report = {
        "model": info,
        "evaluation": evaluation.to_dict(),
        "training": {
            "command": command,
            "data_sha256": data.sha256,
            "config": asdict(cfg),
            "summary": _summary(cfg, len(x)),
            "seconds": round(seconds, 1),
            "seconds_per_epoch": round(seconds / cfg.epochs, 2),
            "history": {k: [round(float(v), 5) for v in vs] for k, vs in history.history.items()},
            "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                         "keras": keras.__version__, "numpy": np.__version__},
        },
    }
    if pen is not None:
        pen_eval, _ = evaluate_tflite(tflite, pen[0], pen[1], pen[2])
        report["pen_digits"] = {"data": pen[2], "samples": pen_eval.samples,
                                "accuracy": pen_eval.accuracy, "per_class": pen_eval.per_class}
    card.write_json(out / "report.json", report)
    (out / "README.md").write_text(card.model_card(info, report, command), encoding="utf-8")
    return report


def _split(data: Mnist, cfg: TrainConfig) -> tuple[Images, Labels, Any]:
    if cfg.validation <= 0:
        return data.x_train, data.y_train, None
    order = np.random.default_rng(cfg.seed).permutation(len(data.y_train))
    hold, keep = np.sort(order[: cfg.validation]), np.sort(order[cfg.validation :])
    val = (data.x_train[hold].astype(np.float32) / 255.0, np.eye(10)[data.y_train[hold]])
    return data.x_train[keep], data.y_train[keep], val


def _training_data(data: Mnist, cfg: TrainConfig) -> str:
    held = f", {cfg.validation} held out" if cfg.validation else ""
    aug = "augmented (see report.json)" if cfg.augment else "not augmented"
    return f"MNIST train: {len(data.y_train)} digits{held} from {data.source}, {aug}"


def _summary(cfg: TrainConfig, n: int) -> str:
    aug = cfg.augment
    how = (f"{aug.p_pen * 100:g}% first redrawn along the skeleton with a uniform round pen "
           f"{aug.pen_min:g}–{aug.pen_max:g} px wide, " if aug and aug.p_pen else "") + (
           f"rotation ±{aug.rotate_deg:g}°, shear ±{aug.shear:g}, aspect ±{aug.aspect * 100:g}%, "
           f"elastic wobble ({aug.p_elastic * 100:g}% of digits), thicker / thinner strokes "
           f"({aug.p_thicker * 100:g}% / {aug.p_thinner * 100:g}%), each digit re-fitted by "
           f"`edge.recognition.normalize.fit_to_mnist`, then scale ±{aug.scale * 100:g}% and shift "
           f"±{aug.shift_px} px on {aug.p_jitter * 100:g}%") if aug else "no augmentation"
    return (f"{n} MNIST training digits, {cfg.epochs} epochs of freshly augmented digits "
            f"({how}); batch {cfg.batch_size}, Adam {cfg.learning_rate:g} with cosine decay, "
            f"dropout {cfg.dropout:g} after each hidden layer, label smoothing "
            f"{cfg.label_smoothing:g}, seed {cfg.seed}.")


class _Batches(keras.utils.PyDataset):  # type: ignore[misc]
    """Keras batches over the current augmented epoch; a new epoch of digits each epoch."""

    def __init__(self, feeder: EpochFeeder, y: Labels, batch: int, seed: int, epochs: int) -> None:
        super().__init__()
        self._feeder, self._onehot, self._batch, self._seed = feeder, np.eye(10)[y], batch, seed
        self._epoch, self._epochs = 0, epochs
        self._load()

    def _load(self) -> None:
        self._x = self._feeder.epoch(self._epoch)
        if self._epoch + 1 < self._epochs:
            self._feeder.prefetch(self._epoch + 1)  # made while this epoch trains
        self._order = np.random.default_rng((self._seed, self._epoch)).permutation(len(self._x))

    def __len__(self) -> int:
        return math.ceil(len(self._order) / self._batch)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self._order[i * self._batch : (i + 1) * self._batch]
        return self._x[idx].astype(np.float32) * (1 / 255.0), self._onehot[idx]

    def on_epoch_end(self) -> None:
        self._epoch += 1
        if self._epoch < self._epochs:
            self._load()

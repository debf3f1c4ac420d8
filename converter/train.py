"""Train the seed MLP (or the CNN) on augmented MNIST, quantise to int8, evaluate, write the lot.

Outputs in ``--out``: ``digits_mlp.keras`` (float), ``digits_mlp_int8.tflite`` with its
sidecar ``digits_mlp_int8.json``, ``report.json``, ``confusion.png`` and a model card
``README.md`` (``digits_cnn…`` for ``--arch cnn``). Seeded: the same command on the same
versions gives the same weights.

``--arch cnn`` trains on more than MNIST: crops the detector cuts from rendered scenes
(``converter.detcrops``, true digits and *not a digit*) and synthetic non-digits
(``converter.nondigits``), all through the same augmentation.
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
from converter.model import (
    ARCHITECTURE,
    CNN_ARCHITECTURE,
    CNN_NAME,
    NAME,
    NOT_DIGIT,
    build_cnn,
    build_mlp,
    multiply_adds,
)
from converter.quantize import representative_sample, to_int8_tflite

log = logging.getLogger(__name__)
INT8_NAME = f"{NAME}_int8"
ARCHS = {"mlp": (NAME, ARCHITECTURE), "cnn": (CNN_NAME, CNN_ARCHITECTURE)}


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
    arch: str = "mlp"  # or "cnn": 11 outputs, the 11th "not a digit"
    threads: int = 2  # TensorFlow's intra-op threads (the machine is shared)
    scenes: int = 1200  # cnn: rendered scenes the detector's training crops come from
    not_digit_share: float = 0.2  # cnn: non-digits (detector's + synthetic) in the training set
    not_digit_weight: float = 1.0  # cnn: loss weight of a non-digit sample (digits: 1)
    cache: str | None = "out/cache"  # cnn: where the harvested detector crops are kept


@dataclass(frozen=True)
class Extra:
    """What the CNN trains on besides MNIST train, for the report and the card."""

    detector_digits: int
    detector_not_digits: int
    synthetic_not_digits: int
    scenes: int
    synthetic_kinds: dict[str, int]


def train(data: Mnist, out: Path, cfg: TrainConfig, command: str,
          pen: tuple[Images, Labels, str] | None = None) -> dict[str, Any]:
    """Run the whole recipe; returns the report (also written to ``out/report.json``)."""
    _set_threads(cfg.threads)
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    out.mkdir(parents=True, exist_ok=True)
    name, architecture = ARCHS[cfg.arch]
    int8_name = f"{name}_int8"
    x, y, val = _split(data, cfg)
    extra: Extra | None = None
    if cfg.arch == "cnn":
        x, y, extra = _with_not_digits(x, y, cfg)
        if val is not None:
            val = (val[0], np.concatenate([val[1], np.zeros((len(val[1]), 1))], axis=1))
    classes = NOT_DIGIT + 1 if cfg.arch == "cnn" else 10
    feeder = EpochFeeder(x, cfg.augment, cfg.seed, cfg.workers if len(x) > 8000 else 0)
    try:
        feeder.prefetch(0)
        model = build_cnn(cfg.dropout) if cfg.arch == "cnn" else build_mlp(cfg.dropout)
        steps = math.ceil(len(x) / cfg.batch_size)
        schedule = keras.optimizers.schedules.CosineDecay(
            cfg.learning_rate, decay_steps=cfg.epochs * steps, alpha=0.01)
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
            metrics=["accuracy"])
        weights = (np.where(y == NOT_DIGIT, cfg.not_digit_weight, 1.0).astype(np.float32)
                   if cfg.arch == "cnn" else None)
        batches = _Batches(feeder, y, cfg.batch_size, cfg.seed, cfg.epochs, classes, weights)
        started = time.perf_counter()
        # A progress bar on a terminal, one line per epoch in a log.
        verbose = 1 if sys.stdout.isatty() else 2
        history = model.fit(batches, epochs=cfg.epochs, verbose=verbose, validation_data=val)
        seconds = time.perf_counter() - started
    finally:
        feeder.close()

    model.save(out / f"{name}.keras")
    float_probs = np.asarray(model.predict(data.x_test.astype(np.float32) / 255.0,
                                           batch_size=1000, verbose=0))
    float_pred = float_probs[:, :10].argmax(axis=1)  # the digit, as the daemon reads it
    float_acc = float((float_pred == data.y_test).mean())
    tflite = out / f"{int8_name}.tflite"
    tflite.write_bytes(to_int8_tflite(model, representative_sample(x, y, 1000, cfg.seed)))
    evaluation, int8_pred = evaluate_tflite(tflite, data.x_test, data.y_test,
                                            f"MNIST test ({data.source})")
    agreement = float((int8_pred == float_pred).mean())
    info = card.sidecar(tflite, int8_name, _training_data(data, cfg, extra), architecture,
                        evaluation, float_acc, agreement)
    if extra is not None:
        info["parameters"] = int(model.count_params())
        info["multiply_adds"] = multiply_adds(model)
        info["mnist_test_not_digit"] = evaluation.not_digit
        info["not_digit_recall"] = _not_digit_recall(tflite, data, cfg)
    card.write_json(tflite.with_suffix(".json"), info)
    card.write_confusion_png(out / "confusion.png", evaluation.confusion,
                             f"{int8_name} on MNIST test: {evaluation.accuracy * 100:.2f}%")
    report = {
        "model": info,
        "evaluation": evaluation.to_dict(),
        "training": {
            "command": command,
            "data_sha256": data.sha256,
            "config": asdict(cfg),
            "summary": _summary(cfg, len(data.y_train) - cfg.validation, extra),
            "extra_data": asdict(extra) if extra else None,
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


def _set_threads(threads: int) -> None:
    """Before TensorFlow's first op: at most ``threads`` cores for the kernels, one pool."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised (a second train() in one process)
        log.debug("TensorFlow threads already set")


def _with_not_digits(x: Images, y: Labels, cfg: TrainConfig) -> tuple[Images, Labels, Extra]:
    """MNIST train + the detector's crops from rendered scenes + synthetic non-digits
    (topped up to ``not_digit_share`` of the whole), in a seeded order."""
    from converter.detcrops import harvest
    from converter.nondigits import make_nondigits

    got = harvest(x, y, cfg.scenes, cfg.seed, Path(cfg.cache) if cfg.cache else None)
    det_nd = int((got.y == NOT_DIGIT).sum())
    digits = len(y) + len(got.y) - det_nd
    wanted = round(digits * cfg.not_digit_share / (1 - cfg.not_digit_share))
    n_syn = max(0, wanted - det_nd)
    syn, kinds = make_nondigits(n_syn, x, y, np.random.default_rng((cfg.seed, 11)))
    all_x = np.concatenate([x, got.x, syn])
    all_y = np.concatenate([y, got.y, np.full(n_syn, NOT_DIGIT, np.int64)])
    extra = Extra(len(got.y) - det_nd, det_nd, n_syn, got.scenes,
                  {k: kinds.count(k) for k in sorted(set(kinds))})
    log.info("training set: %d MNIST + %d detector digits, %d detector + %d synthetic non-digits",
             len(y), extra.detector_digits, det_nd, n_syn)
    return all_x, all_y, extra


def _not_digit_recall(tflite: Path, data: Mnist, cfg: TrainConfig) -> dict[str, Any]:
    """How often the int8 model answers *not a digit* for non-digits it never saw: the
    detector's from other scenes, and a fresh draw of synthetic ones."""
    from converter.detcrops import harvest
    from converter.evaluate import open_classifier
    from converter.nondigits import make_nondigits

    clf = open_classifier(tflite)
    n = max(20, cfg.scenes // 10)
    got = harvest(data.x_train, data.y_train, n, cfg.seed + 1000, Path(cfg.cache) if cfg.cache else None)
    det = got.x[got.y == NOT_DIGIT]
    digits, labels = got.x[got.y != NOT_DIGIT], got.y[got.y != NOT_DIGIT]
    syn, _ = make_nondigits(2000, data.x_train, data.y_train, np.random.default_rng((cfg.seed, 12)))

    def share(crops: Images) -> float:
        return round(float((clf.probabilities(crops).argmax(axis=1) == NOT_DIGIT).mean()), 4) if len(crops) else 0.0

    digit_right = float((clf.predict_labels(digits) == labels).mean()) if len(digits) else 0.0
    return {"scenes": n, "detector_not_digits": len(det), "detector_recall": share(det),
            "synthetic_not_digits": len(syn), "synthetic_recall": share(syn),
            "detector_digits": len(digits), "detector_digits_not_digit": share(digits),
            "detector_digits_accuracy": round(digit_right, 4)}


def _training_data(data: Mnist, cfg: TrainConfig, extra: Extra | None = None) -> str:
    held = f", {cfg.validation} held out" if cfg.validation else ""
    aug = "augmented (see report.json)" if cfg.augment else "not augmented"
    text = f"MNIST train: {len(data.y_train)} digits{held} from {data.source}, {aug}"
    if extra is None:
        return text
    return (f"{text}; plus {extra.detector_digits} digits and {extra.detector_not_digits} not-a-digit "
            f"crops the detector cut from {extra.scenes} scenes rendered with MNIST train glyphs, and "
            f"{extra.synthetic_not_digits} synthetic non-digits (letters, marks, texture, digit halves)")


def _summary(cfg: TrainConfig, n: int, extra: Extra | None = None) -> str:
    aug = cfg.augment
    how = (f"{aug.p_pen * 100:g}% first redrawn along the skeleton with a uniform round pen "
           f"{aug.pen_min:g}–{aug.pen_max:g} px wide, " if aug and aug.p_pen else "") + (
           f"rotation ±{aug.rotate_deg:g}°, shear ±{aug.shear:g}, aspect ±{aug.aspect * 100:g}%, "
           f"elastic wobble ({aug.p_elastic * 100:g}% of digits), thicker / thinner strokes "
           f"({aug.p_thicker * 100:g}% / {aug.p_thinner * 100:g}%), each digit re-fitted by "
           f"`edge.recognition.normalize.fit_to_mnist`, then scale ±{aug.scale * 100:g}% and shift "
           f"±{aug.shift_px} px on {aug.p_jitter * 100:g}%") if aug else "no augmentation"
    data = f"{n} MNIST training digits"
    if extra is not None:
        data += (f", {extra.detector_digits} digits and {extra.detector_not_digits} non-digits cut by "
                 f"the detector (`converter.detcrops`) from {extra.scenes} scenes rendered by "
                 f"`edge/bench/scenes.py` with MNIST train glyphs (half ordinary, half hard), and "
                 f"{extra.synthetic_not_digits} synthetic non-digits (`converter.nondigits`: "
                 + ", ".join(f"{v} {k}" for k, v in extra.synthetic_kinds.items())
                 + f"); non-digits are {cfg.not_digit_share * 100:g}% of the samples, "
                 f"loss weight {cfg.not_digit_weight:g}")
    return (f"{data}, {cfg.epochs} epochs of freshly augmented samples "
            f"({how}); batch {cfg.batch_size}, Adam {cfg.learning_rate:g} with cosine decay, "
            f"dropout {cfg.dropout:g} "
            f"{'before each dense layer' if extra else 'after each hidden layer'}, label smoothing "
            f"{cfg.label_smoothing:g}, seed {cfg.seed}.")


class _Batches(keras.utils.PyDataset):  # type: ignore[misc]
    """Keras batches over the current augmented epoch; a new epoch of digits each epoch."""

    def __init__(self, feeder: EpochFeeder, y: Labels, batch: int, seed: int, epochs: int,
                 classes: int = 10, weights: np.ndarray | None = None) -> None:
        super().__init__()
        self._feeder, self._onehot, self._batch, self._seed = feeder, np.eye(classes)[y], batch, seed
        self._weights = weights
        self._epoch, self._epochs = 0, epochs
        self._load()

    def _load(self) -> None:
        self._x = self._feeder.epoch(self._epoch)
        if self._epoch + 1 < self._epochs:
            self._feeder.prefetch(self._epoch + 1)  # made while this epoch trains
        self._order = np.random.default_rng((self._seed, self._epoch)).permutation(len(self._x))

    def __len__(self) -> int:
        return math.ceil(len(self._order) / self._batch)

    def __getitem__(self, i: int) -> tuple[np.ndarray, ...]:
        idx = self._order[i * self._batch : (i + 1) * self._batch]
        x = self._x[idx].astype(np.float32) * (1 / 255.0)
        if self._weights is None:
            return x, self._onehot[idx]
        return x, self._onehot[idx], self._weights[idx]

    def on_epoch_end(self) -> None:
        self._epoch += 1
        if self._epoch < self._epochs:
            self._load()

"""Score an int8 model through ``edge.recognition.classify.Classifier`` — the daemon's own interpreter code,
so the figures describe exactly what the daemon runs. Needs no TensorFlow."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converter import ConverterError
from converter.data import Images, Labels
from edge.progress import counter
from edge.recognition.classify import NOT_DIGIT, Classifier, ModelError

CHUNK = 256  # digits per invoke: memory stays flat, and the bar moves


@dataclass(frozen=True)
class Evaluation:
    model: str
    path: str
    runtime: str
    data: str
    samples: int
    accuracy: float
    per_class: list[float]
    confusion: list[list[int]]  # rows: true digit, columns: predicted digit
    not_digit: float = 0.0  # share of samples whose top class is "not a digit" (11-output models)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def open_classifier(path: Path) -> Classifier:
    try:
        return Classifier(path)
    except ModelError as exc:
        raise ConverterError(str(exc)) from None


def predict_labels(path: Path, x: Images) -> Labels:
    return _score(open_classifier(path), x)[0]


def _score(clf: Classifier, x: Images) -> tuple[Labels, float]:
    """Digit labels for ``x`` and the share whose top class is "not a digit", in one pass of
    chunks, with a progress bar on a terminal."""
    labels: list[Labels] = []
    not_digit = 0
    with counter(len(x), "evaluating", unit="digit") as bar:
        for start in range(0, len(x), CHUNK):
            probs = clf.probabilities(x[start : start + CHUNK])
            digits = probs[:, :NOT_DIGIT].argmax(axis=1)
            labels.append(digits.astype(np.int64))
            if clf.classes > NOT_DIGIT:
                not_digit += int((probs[:, NOT_DIGIT] > probs[np.arange(len(probs)), digits]).sum())
            bar.update(len(probs))
    pred: Labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    return pred, not_digit / max(1, len(x))


def evaluate_tflite(path: Path, x: Images, y: Labels, data: str) -> tuple[Evaluation, Labels]:
    """Accuracy, per-class accuracy and confusion matrix; also returns the predictions."""
    clf = open_classifier(path)
    pred, not_digit = _score(clf, x)
    conf = confusion_matrix(y, pred)
    totals = conf.sum(axis=1)
    per_class = [round(float(conf[c, c] / totals[c]), 5) if totals[c] else 0.0 for c in range(10)]
    ev = Evaluation(
        model=clf.name, path=str(path), runtime=clf.runtime, data=data, samples=len(y),
        accuracy=round(float((pred == y).mean()), 5), per_class=per_class,
        confusion=conf.tolist(), not_digit=round(not_digit, 5),
    )
    return ev, pred


def confusion_matrix(y: Labels, pred: Labels) -> np.ndarray:
    conf = np.zeros((10, 10), np.int64)
    np.add.at(conf, (y, pred), 1)
    return conf


def format_text(ev: Evaluation) -> str:
    """A short human report: headline, per-class accuracy, confusion matrix."""
    lines = [
        f"{ev.model} ({ev.path}, {ev.runtime}) on {ev.data}:",
        f"  accuracy {ev.accuracy * 100:.2f}% ({round(ev.accuracy * ev.samples)}/{ev.samples})"
        + (f"; 'not a digit' wins on {ev.not_digit * 100:.2f}%" if ev.not_digit else ""),
        "  per class: " + "  ".join(f"{d}:{a * 100:.1f}" for d, a in enumerate(ev.per_class)),
        "  confusion (rows: true digit, columns: predicted):",
        "       " + "".join(f"{d:>6}" for d in range(10)),
    ]
    lines += [f"    {d}: " + "".join(f"{n:>6}" for n in row) for d, row in enumerate(ev.confusion)]
    return "\n".join(lines)

"""`digit-convert` end to end: train → int8 → evaluate, a user's .h5, the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.recognition.classify import Classifier, default_model_path
from tests.converter_helpers import REPO, convert, mnist_npz, needs_tf, run_python

SIDECAR_KEYS = {"name", "training_data", "mnist_test_accuracy", "float_accuracy", "agreement",
                "date", "converter_version", "input"}


@pytest.fixture(scope="module")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    with np.load(mnist_npz()) as npz:
        return npz["x_test"], npz["y_test"].astype(np.int64)


# --- the shipped model (no TensorFlow needed) ---

# classify.model, file name, MNIST int8 test accuracy it must reach, outputs, largest file (KB).
SHIPPED_MODELS = [("mlp", "digits_mlp_int8", 0.988, 10, 300), ("cnn", "digits_cnn_int8", 0.995, 11, 150)]


@pytest.mark.parametrize(("model", "name", "floor", "classes", "max_kb"), SHIPPED_MODELS)
def test_shipped_model_meets_its_accuracy_on_mnist_test(
        mnist_test: tuple[np.ndarray, np.ndarray], model: str, name: str, floor: float,
        classes: int, max_kb: int) -> None:
    path = default_model_path(model)
    assert path.is_file(), path
    assert path.stat().st_size <= max_kb * 1024
    clf = Classifier(path)
    assert clf.classes == classes
    x, y = mnist_test
    accuracy = float((clf.predict_labels(x) == y).mean())
    assert accuracy >= floor
    info = json.loads(path.with_suffix(".json").read_text())
    assert set(info) >= SIDECAR_KEYS
    assert info["name"] == clf.name == name
    assert info["mnist_test_accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert abs(info["float_accuracy"] - accuracy) <= 0.002
    assert clf.describe()["mnist_test_accuracy"] == info["mnist_test_accuracy"]
    if classes == 11:
        assert info["parameters"] <= 100_000
        assert info["multiply_adds"] <= 1_000_000  # the per-frame budget (issue 13)
        # MNIST digits are digits: "not a digit" rarely wins on them.
        not_digit = np.mean([p.not_digit > p.confidence for p in clf.predict(x[:2000])])
        assert not_digit <= 0.005


@pytest.mark.parametrize(("model", "name", "floor", "classes", "max_kb"), SHIPPED_MODELS)
def test_evaluate_command_on_the_shipped_model(model: str, name: str, floor: float, classes: int,
                                               max_kb: int) -> None:
    proc = convert("evaluate", REPO / "models" / f"{name}.tflite", "--data", mnist_npz(),
                   "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["samples"] == 10000
    assert report["accuracy"] >= floor
    assert min(report["per_class"]) >= 0.97
    conf = np.array(report["confusion"])
    assert conf.shape == (10, 10) and conf.sum() == 10000
    assert np.trace(conf) == round(report["accuracy"] * 10000)


def test_both_reads_each_crop_with_the_mlp_and_the_cnn_and_averages(mnist_test: tuple[np.ndarray, np.ndarray]
                                                                     ) -> None:
    """``classify.model: both`` (the default): the mean of the two shipped models' probabilities,
    the MLP's "not a digit" counted as 0; on MNIST at least as good as the weaker of the two."""
    x, y = mnist_test
    mlp, cnn, both = Classifier(model="mlp"), Classifier(model="cnn"), Classifier()
    assert both.name == "digits_mlp_int8+digits_cnn_int8" and both.classes == 11
    assert both.paths == (default_model_path("mlp"), default_model_path("cnn"))
    crops = x[:64]
    p_mlp, p_cnn, p_both = mlp.probabilities(crops), cnn.probabilities(crops), both.probabilities(crops)
    assert np.allclose(p_both[:, :10], (p_mlp + p_cnn[:, :10]) / 2, atol=1e-6)
    assert np.allclose(p_both[:, 10], p_cnn[:, 10] / 2, atol=1e-6)
    accuracy = float((both.predict_labels(x) == y).mean())
    assert accuracy >= 0.988
    described = both.describe()
    assert [m["name"] for m in described["models"]] == ["digits_mlp_int8", "digits_cnn_int8"]
    assert all("mnist_test_accuracy" in m for m in described["models"])


@pytest.mark.parametrize("name", [m[1] for m in SHIPPED_MODELS])
def test_installed_package_finds_the_model_through_edge_models(name: str) -> None:
    # edge/models is the package's view of models/ (a symlink), included as package data.
    assert (REPO / "edge" / "models" / f"{name}.tflite").is_file()
    assert (REPO / "edge" / "models" / f"{name}.json").is_file()


NO_TF = """
import sys
import numpy as np
import edge, edge.recognition.classify, edge.recognition.normalize, edge.cli
from edge.recognition.classify import Classifier
clf = Classifier()
crop = np.zeros((28, 28), np.uint8); crop[6:22, 13:16] = 255  # a "1"
print(clf.predict(np.stack([crop]))[0].digit, clf.runtime)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
print("imported:", heavy)
"""


def test_edge_classifies_without_importing_tensorflow(tmp_path: Path) -> None:
    proc = run_python(NO_TF, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    digit, runtime = proc.stdout.splitlines()[0].split()
    assert digit == "1"
    assert runtime != "tensorflow.lite"
    assert proc.stdout.splitlines()[1] == "imported: []"


# --- training and conversion (TensorFlow in a subprocess, as a user runs them) ---

@needs_tf
def test_train_briefly_then_int8_then_evaluate(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = convert("train", "--data", mnist_npz(), "--out", out, "--epochs", "2",
                   "--limit", "2000", "--seed", "3", "--workers", "0")
    assert proc.returncode == 0, proc.stderr
    for name in ("digits_mlp.keras", "digits_mlp_int8.tflite", "digits_mlp_int8.json",
                 "report.json", "confusion.png", "README.md"):
        assert (out / name).is_file(), name
    info = json.loads((out / "digits_mlp_int8.json").read_text())
    assert set(info) >= SIDECAR_KEYS
    assert info["input"]["dtype"] == "int8" and info["input"]["zero_point"] == -128
    assert info["agreement"] >= 0.98  # int8 and float give the same digit
    assert info["float_accuracy"] >= 0.7  # 2000 augmented digits, two epochs: ~80%
    report = json.loads((out / "report.json").read_text())
    assert report["training"]["config"]["seed"] == 3
    assert len(report["training"]["history"]["loss"]) == 2
    png = cv2.imread(str(out / "confusion.png"))
    assert png is not None and png.shape[0] > 400

    proc = convert("evaluate", out / "digits_mlp_int8.tflite", "--data", mnist_npz(), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["accuracy"] == info["mnist_test_accuracy"]
    text = convert("evaluate", out / "digits_mlp_int8.tflite", "--data", mnist_npz())
    assert "accuracy" in text.stdout and "confusion" in text.stdout


@needs_tf
def test_train_cnn_briefly_folds_batchnorm_and_records_the_options(tmp_path: Path) -> None:
    """The CNN recipe end to end on a little data: 11 int8 outputs, ≤ 100 k parameters and
    ≤ 1 M multiply-adds a crop, BatchNorm folded into the three convolutions (no multiply/add
    ops left in the graph), and --rotate / --label-smoothing reaching the training configuration."""
    out = tmp_path / "cnn"
    proc = convert("train", "--arch", "cnn", "--data", mnist_npz(), "--out", out, "--epochs", "1",
                   "--limit", "1000", "--scenes", "6", "--seed", "3", "--workers", "0",
                   "--rotate", "20", "--label-smoothing", "0.1", "--cache", tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    assert "not a digit" in proc.stdout
    tflite = out / "digits_cnn_int8.tflite"
    clf = Classifier(tflite)
    assert clf.classes == 11
    info = json.loads(tflite.with_suffix(".json").read_text())
    assert 50_000 <= info["parameters"] <= 100_000
    assert info["multiply_adds"] <= 1_000_000  # the per-frame budget (issue 13)
    assert "BatchNorm" in info["architecture"]
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tflite))
    interp.allocate_tensors()
    ops = [op["op_name"] for op in interp._get_ops_details()]
    assert ops.count("CONV_2D") == 3, ops
    assert not {"MUL", "ADD", "SUB"} & set(ops), ops  # BatchNorm folded, not left as arithmetic
    report = json.loads((out / "report.json").read_text())
    config = report["training"]["config"]
    assert config["label_smoothing"] == 0.1
    assert config["augment"]["rotate_deg"] == 20.0
    assert "rotation ±20°" in report["training"]["summary"]
    assert "label smoothing 0.1" in (out / "README.md").read_text()


@pytest.mark.parametrize(("option", "value", "needle"), [
    ("--rotate", "90", "0..45"), ("--rotate", "tilt", "not a number"),
    ("--label-smoothing", "1.5", "0..0.9")])
def test_train_rejects_out_of_range_options(tmp_path: Path, option: str, value: str, needle: str) -> None:
    proc = convert("train", "--data", mnist_npz(), "--out", tmp_path / "out", option, value)
    assert proc.returncode == 2
    assert option in proc.stderr and needle in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()

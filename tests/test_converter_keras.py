"""`digit-convert convert` on users' Keras models: the original project's .h5 (as saved by
today's Keras and by tf.keras 2.x), and models that are not 10-class 28x28 classifiers.

Every file is made in one TensorFlow subprocess; each conversion runs the CLI as a user would.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.recognition.classify import Classifier
from tests.converter_helpers import assert_one_line_error, convert, mnist_npz, needs_tf, run_python
from tests.daemon import DIGIT_EDGE

pytestmark = needs_tf

# The original project: a Sequential MLP fed pixels/255, saved with model.save('my_model.h5').
# It was written with tf.keras 2.x; Keras 3 writes .h5 slightly differently, so the test has
# both: the model saved by today's Keras, and the same weights in tf.keras 2.x's layout
# (its JSON config with `batch_input_shape`, weights named `dense/kernel:0`).
ORIGINAL_H5 = """
import json, h5py, keras, numpy as np
keras.utils.set_random_seed(0)
with np.load(MNIST) as d:
    x, y = d["x_train"][:3000] / 255.0, d["y_train"][:3000]
model = keras.models.Sequential()
model.add(keras.layers.Flatten(input_shape=[28, 28]))
model.add(keras.layers.Dense(300, activation="relu"))
model.add(keras.layers.Dense(100, activation="relu"))
model.add(keras.layers.Dense(10, activation="softmax"))
model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
model.fit(x, y, epochs=3, verbose=0)
model.save("my_model.h5")

def dense(name, units, act):
    return {"class_name": "Dense", "config": {
        "name": name, "trainable": True, "dtype": "float32", "units": units, "activation": act,
        "use_bias": True, "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
        "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": None,
        "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
        "bias_constraint": None}}
names = ["dense", "dense_1", "dense_2"]
config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
    {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 28, 28], "dtype": "float32",
                                            "sparse": False, "ragged": False, "name": "flatten_input"}},
    {"class_name": "Flatten", "config": {"name": "flatten", "trainable": True, "dtype": "float32",
                                         "batch_input_shape": [None, 28, 28], "data_format": "channels_last"}},
    dense("dense", 300, "relu"), dense("dense_1", 100, "relu"), dense("dense_2", 10, "softmax")]}}
with h5py.File("my_model_tf2.h5", "w") as f:
    f.attrs["keras_version"], f.attrs["backend"] = "2.12.0", "tensorflow"
    f.attrs["model_config"] = json.dumps(config)
    weights = f.create_group("model_weights")
    weights.attrs["layer_names"] = [n.encode() for n in ["flatten", *names]]
    weights.attrs["keras_version"], weights.attrs["backend"] = "2.12.0", "tensorflow"
    weights.create_group("flatten").attrs["weight_names"] = np.array([], dtype="S")
    for layer, name in zip(model.layers[1:], names):
        group = weights.create_group(name)
        group.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
        kernel, bias = layer.get_weights()
        group.create_dataset(f"{name}/kernel:0", data=kernel)
        group.create_dataset(f"{name}/bias:0", data=bias)
"""


WRONG_MODELS = """
import keras, numpy as np
keras.utils.set_random_seed(0)
keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                  keras.layers.Dense(10, activation="softmax")]).save("rgb32.keras")
keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                  keras.layers.Dense(5, activation="softmax")]).save("five.keras")
logits = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])  # no softmax
logits.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
logits.fit(x.reshape(-1, 784), y, epochs=2, verbose=0)
logits.save("logits.keras")
import tensorflow as tf
with open("logits_float.tflite", "wb") as f:  # converted as is: a float model that ends in logits
    f.write(tf.lite.TFLiteConverter.from_keras_model(logits).convert())
"""


@pytest.fixture(scope="module")
def keras_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All the Keras files of this module, made in one TensorFlow process."""
    folder = tmp_path_factory.mktemp("keras_models")
    proc = run_python(f"MNIST = {str(mnist_npz())!r}\n" + ORIGINAL_H5 + WRONG_MODELS, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    data = (folder / "my_model.h5").read_bytes()
    (folder / "truncated.h5").write_bytes(data[: len(data) // 3])
    return folder


@pytest.mark.parametrize("name", ["my_model", "my_model_tf2"])
def test_convert_the_original_projects_h5(keras_models: Path, name: str) -> None:
    h5 = keras_models / f"{name}.h5"
    assert h5.read_bytes()[:4] == b"\x89HDF"
    proc = convert("convert", h5, "--representative", mnist_npz(), cwd=keras_models)
    assert proc.returncode == 0, proc.stderr
    out = keras_models / f"{name}_int8.tflite"
    assert f"{out}:" in proc.stdout
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["name"] == f"{name}_int8"
    assert info["agreement"] >= 0.98
    assert info["float_accuracy"] >= 0.75  # SGD, 3 epochs on 3000 digits: ~81%
    assert "Dense 300 relu" in info["architecture"]
    clf = Classifier(out)
    assert clf.input_dtype == np.int8
    assert clf.describe()["mnist_test_accuracy"] == info["mnist_test_accuracy"]


def test_model_with_the_wrong_input_shape(keras_models: Path) -> None:
    path = keras_models / "rgb32.keras"
    proc = convert("convert", path, "--representative", mnist_npz())
    assert_one_line_error(proc, str(path), "(None, 32, 32, 3)", "(None, 28, 28)", "784")
    assert not path.with_name("rgb32_int8.tflite").exists()


def test_model_with_the_wrong_number_of_classes(keras_models: Path) -> None:
    path = keras_models / "five.keras"
    proc = convert("convert", path, "--representative", mnist_npz())
    assert_one_line_error(proc, str(path), "(None, 5)", "(None, 10)")


def test_truncated_h5_model(keras_models: Path) -> None:
    path = keras_models / "truncated.h5"
    proc = convert("convert", path, "--representative", mnist_npz())
    assert_one_line_error(proc, str(path), "cannot load the Keras model")


def test_model_ending_in_logits_gets_a_softmax(keras_models: Path) -> None:
    path = keras_models / "logits.keras"
    proc = convert("convert", path, "--representative", mnist_npz())
    assert proc.returncode == 0, proc.stderr
    assert "appending a softmax" in proc.stderr
    clf = Classifier(keras_models / "logits_int8.tflite")
    with np.load(mnist_npz()) as npz:
        x = npz["x_test"][:50]
    probs = clf.probabilities(x)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=0.05)
    assert json.loads((keras_models / "logits_int8.json").read_text())["float_accuracy"] >= 0.8


def test_a_float_model_without_softmax_is_refused_by_the_daemon(keras_models: Path, tmp_path: Path) -> None:
    """Its 'confidences' are logits (0.41, 7.3, ...): min_confidence would mean nothing."""
    import subprocess

    import cv2

    model = keras_models / "logits_float.tflite"
    image = tmp_path / "blank.png"
    cv2.imwrite(str(image), np.full((64, 64), 255, np.uint8))
    proc = subprocess.run([DIGIT_EDGE, "predict", "--model", str(model), str(image)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]  # after the runtime's own "XNNPACK delegate" note
    assert line.startswith(f"digit-edge: error: {model}: its outputs are not probabilities"), proc.stderr
    assert "softmax" in line and "digit-convert convert" in line

"""The networks ``digit-convert train --arch`` builds.

``mlp``: the seed's MLP, unchanged in its inference graph: 28x28 → 300 relu → 100 relu → 10
softmax. Dropout is the only addition; it is the identity at inference, so the int8 model is
the seed's network exactly (~266 k weights, ~270 KB as int8).

``cnn``: a LeNet-class convolutional net (< 100 k parameters) with an 11th output, *not a
digit*, trained on crops the detector cuts from rendered scenes as well as MNIST: the MLP
always answers a digit, so specks and ruling remnants could only be rejected by their
(often high) confidence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

NAME = "digits_mlp"
ARCHITECTURE = "28x28 → Flatten → Dense 300 relu → Dense 100 relu → Dense 10 softmax"


CNN_NAME = "digits_cnn"
NOT_DIGIT = 10  # the CNN's 11th class
CNN_ARCHITECTURE = ("28x28x1 → Conv 3x3 16 + BatchNorm relu → MaxPool 2 → Conv 3x3 32 + BatchNorm "
                    "relu → MaxPool 2 → Conv 3x3 64 + BatchNorm relu → Flatten 576 → Dense 60 relu "
                    "→ Dense 11 softmax (0–9, 10 = not a digit); BatchNorm folded into the "
                    "convolutions at conversion")
CNN_WIDTHS = (16, 32, 64)  # channels of the three valid 3x3 convolutions
CNN_DENSE = 60


def build_mlp(dropout: float = 0.1) -> keras.Model:
    """Input: (N, 28, 28) float32 in [0, 1], white ink on black. Output: 10 probabilities."""
    import keras

    layers = [keras.Input((28, 28), name="image"), keras.layers.Flatten()]
    for width in (300, 100):
        layers.append(keras.layers.Dense(width, activation="relu"))
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(10, activation="softmax", name="probabilities"))
    return keras.Sequential(layers, name=NAME)


def build_cnn(dropout: float = 0.25) -> keras.Model:
    """Input: (N, 28, 28) float32 in [0, 1], white ink on black, as the MLP's. Output: 11
    probabilities, index 10 = not a digit. Three valid 3x3 convolutions, 16 → 32 → 64
    channels, pooled after the first two (26 → 13 → 11 → 5 → 3): the cheap, narrow layer at
    full size and the wide one on 3x3 keep it under 1 M multiply-adds per crop (the 5x5 32/64
    net before it cost 3.8 M: 3.6 ms per 16-crop invoke, too slow for a frame). BatchNorm
    after each convolution (no conv bias) steadies training under heavy augmentation; the
    TFLite converter folds it into the convolution's weights, so the int8 graph is
    conv → relu → pool only."""
    import keras

    layers: list[keras.layers.Layer] = [
        keras.Input((28, 28), name="image"),
        keras.layers.Reshape((28, 28, 1)),
    ]
    for i, width in enumerate(CNN_WIDTHS):
        layers += [keras.layers.Conv2D(width, 3, use_bias=False),
                   keras.layers.BatchNormalization(),
                   keras.layers.ReLU()]
        if i < len(CNN_WIDTHS) - 1:
            layers.append(keras.layers.MaxPooling2D(2))
    layers.append(keras.layers.Flatten())
    if dropout > 0:
        layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(CNN_DENSE, activation="relu"))
    if dropout > 0:
        layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(NOT_DIGIT + 1, activation="softmax", name="probabilities"))
    return keras.Sequential(layers, name=CNN_NAME)


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds one crop costs at inference: convolutions and dense layers (BatchNorm is
    folded away, pooling and relu are not counted). The figure the per-frame budget is
    planned with, before any training."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += int(h * w * c_out * kh * kw * layer.input.shape[-1])
        elif isinstance(layer, keras.layers.Dense):
            total += int(layer.input.shape[-1] * layer.units)
    return total

"""The seed's MLP, unchanged in its inference graph: 28x28 → 300 relu → 100 relu → 10 softmax.

Dropout is the only addition; it is the identity at inference, so the int8 model is the
seed's network exactly (~266 k weights, ~270 KB as int8).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

NAME = "digits_mlp"
ARCHITECTURE = "28x28 → Flatten → Dense 300 relu → Dense 100 relu → Dense 10 softmax"


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

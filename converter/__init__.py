"""digit-convert: train the seed MLP, import a user's Keras model, quantise to int8, evaluate.

This package is the only one that imports TensorFlow/Keras, and it does so lazily, inside
the functions that need it: loading and checking inputs, and evaluating an int8 model
through ``edge.recognition.classify``, run without it.
"""

from edge import __version__

__all__ = ["ConverterError", "__version__"]


class ConverterError(Exception):
    """A bad input or failed step; the message is one line naming the file and the problem."""

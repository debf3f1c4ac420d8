"""digit-edge: read handwritten digits from a camera and publish them over MQTT.

The package never imports TensorFlow: inference runs on a TFLite interpreter
(``ai_edge_litert`` first, then ``tflite_runtime``, then ``tensorflow.lite``).
"""

__version__ = "0.1.0"

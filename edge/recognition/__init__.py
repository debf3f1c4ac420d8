"""The pure image-to-digits part: frame → regions → 28x28 crops → digits → numbers.

No I/O, no threads, no service state: the daemon (``edge.runner``), ``predict``, the bench
and the converter all use these stages through ``pipeline.Pipeline`` (or ``normalize`` for
training), and nothing here imports the service modules.
"""

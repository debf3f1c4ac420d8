"""``digit-edge doctor``: check everything the daemon needs, say what is wrong and how to fix it.

Each check prints one ✓ or ✗ line, in the order a newcomer sets things up — config, model,
interpreter, camera, broker, state directory, video permissions — and every ✗ is followed by
a ``fix:`` line. The checks use the daemon's own code (config loader, classifier,
``open_source``, the MQTT client builder, the state directory rules), so a pass here means
the daemon gets past the same step. Run it as the service's user to see what the service sees.

This is command-line output, so it is written to ``out`` (stdout), not logged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from edge.config import Config, ConfigError, find_config_path, load_config
from edge.doctor_checks import (
    Failed,
    check_broker,
    check_source,
    check_state_dir,
    check_video_access,
)
from edge.recognition.classify import Classifier, ModelError
from edge.recognition.normalize import fit_to_mnist, ink_from_crop

GLYPHS = Path(__file__).resolve().parent / "demo" / "glyphs.png"
RUNTIME_DISTRIBUTIONS = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime",
                         "tensorflow.lite": "tensorflow"}


@dataclass
class Result:
    ok: bool
    text: str
    fix: str = ""


@dataclass
class Found:
    """What earlier checks found and later ones use."""

    config: Config | None = None
    classifier: Classifier | None = None


def run_doctor(config_path: str | None, out: TextIO | None = None) -> int:
    """Run every check; 0 if all passed, 1 otherwise."""
    stream = out if out is not None else sys.stdout
    failures = 0

    def report(name: str, check: Callable[[], str]) -> bool:
        nonlocal failures
        try:
            res = Result(True, check())
        except Failed as exc:
            res = Result(False, exc.text, exc.fix)
        except Exception as exc:  # a check must never stop the others
            res = Result(False, f"the check itself failed: {exc!r}",
                         "please report this with the output of `digit-edge --debug doctor`")
        failures += not res.ok
        stream.write(f"{'✓' if res.ok else '✗'} {name}: {res.text}\n")
        if res.fix:
            stream.write(f"    fix: {res.fix}\n")
        stream.flush()
        return res.ok

    if os.geteuid() == 0:
        stream.write("note: running as root, which may read files and devices the service's user "
                     "cannot; run `sudo -u digit-edge STATE_DIRECTORY=/var/lib/digit-edge "
                     "digit-edge doctor` to see what the service sees\n")
    found = Found()
    if not report("config", lambda: check_config(config_path, found)) or found.config is None:
        stream.write("  (the other checks need a valid config)\n")
        return 1
    cfg = found.config
    report("model", lambda: check_model(cfg, found))
    report("interpreter", lambda: check_runtime(found.classifier))
    report("camera", lambda: check_source(cfg))
    report("broker", lambda: check_broker(cfg))
    report("state directory", lambda: check_state_dir(cfg.resolved_state_dir()))
    report("video devices", lambda: check_video_access(cfg.source))
    stream.write("all checks passed\n" if failures == 0 else f"{failures} check(s) failed\n")
    return 0 if failures == 0 else 1


def check_config(config_path: str | None, found: Found) -> str:
    path = find_config_path(config_path)
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        raise Failed(str(exc).replace("\n", "\n    "),
                     "correct the key(s) named above; config.yaml in the project lists every key "
                     "with its default") from None
    found.config = cfg
    where = str(path) if path else "no config file, built-in defaults"
    broker = f"{cfg.mqtt.host}:{cfg.mqtt.port}" if cfg.mqtt.enabled else "off"
    return f"{where} is valid (source {cfg.source}, MQTT {broker})"


def check_model(cfg: Config, found: Found) -> str:
    try:
        classifier = Classifier(cfg.model, threads=cfg.classify.threads, model=cfg.classify.model)
    except ModelError as exc:
        raise Failed(str(exc), "set `model:` to a .tflite file made by `digit-convert convert`, or "
                     "null for the shipped model (reinstall digit-edge if that one is missing)") from None
    found.classifier = classifier
    sheet = cv2.imread(str(GLYPHS), cv2.IMREAD_GRAYSCALE)
    if sheet is None or sheet.shape[0] < 28 or sheet.shape[1] < 280:
        raise Failed(f"{GLYPHS}: built-in test digits missing or unreadable", "reinstall digit-edge")
    crops = np.stack([fit_to_mnist(ink_from_crop(sheet[0:28, d * 28 : (d + 1) * 28])) for d in range(10)])
    read = "".join(str(p.digit) for p in classifier.predict(crops))
    right = sum(a == b for a, b in zip(read, "0123456789", strict=True))
    if right < 9:
        raise Failed(
            f"{classifier.path} loads but reads the test digits 0123456789 as {read} ({right}/10 right)",
            "use a model trained on MNIST-style 28x28 digits (white on black): "
            "`digit-convert train`, or model: null for the shipped one")
    return f"{classifier.name} ({classifier.path}) reads {right}/10 built-in test digits right"


def check_runtime(classifier: Classifier | None) -> str:
    if classifier is None:
        from edge.recognition.classify import load_interpreter_class

        try:
            _, runtime = load_interpreter_class()
        except ModelError as exc:
            raise Failed(str(exc), "pip install ai-edge-litert (64-bit OS), or tflite-runtime with "
                         "numpy<2 on 32-bit Raspberry Pi OS") from None
    else:
        runtime = classifier.runtime
    dist = RUNTIME_DISTRIBUTIONS.get(runtime, runtime)
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        version = "version unknown"
    note = {"tflite_runtime": "; fallback runtime, slower: prefer ai-edge-litert on a 64-bit OS",
            "tensorflow.lite": "; deprecated: prefer ai-edge-litert"}.get(runtime, "")
    return f"{runtime} {version} (numpy {np.__version__}, OpenCV {cv2.__version__}){note}"

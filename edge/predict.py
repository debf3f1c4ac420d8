"""``digit-edge predict``: read digits in image files, one result per image, errors per image."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.annotate import annotate
from edge.config import FieldConfig
from edge.fields import read_fields
from edge.imagefile import ImageError, load_image
from edge.recognition.pipeline import Pipeline
from edge.types import Box, Digit, FrameResult, Number

log = logging.getLogger(__name__)
MAX_SIDE = 4096  # larger images are read at this size; boxes are mapped back


def _scale_box(b: Box, f: float) -> Box:
    return Box(round(b.x * f), round(b.y * f), max(1, round(b.w * f)), max(1, round(b.h * f)))


def _rescale(result: FrameResult, f: float) -> FrameResult:
    digits = tuple(Digit(d.digit, d.confidence, _scale_box(d.box, f), d.clipped) for d in result.digits)
    lookup = {id(d): s for d, s in zip(result.digits, digits, strict=True)}
    numbers = tuple(
        Number(n.value, n.confidence, _scale_box(n.box, f), tuple(lookup.get(id(d), d) for d in n.digits),
               n.sheet_box)
        for n in result.numbers
    )
    sheet = result.sheet.scaled(f) if result.sheet is not None else None
    size = (round(result.size[0] * f), round(result.size[1] * f))
    return FrameResult(digits, numbers, result.latency_ms, result.stage_ms, result.regions, sheet=sheet, size=size)


def read_digits(pipeline: Pipeline, image: npt.NDArray[np.uint8]) -> FrameResult:
    """Run the pipeline, shrinking huge images first so memory and time stay bounded."""
    h, w = image.shape[:2]
    if max(h, w) <= MAX_SIDE:
        return pipeline.process(image)
    f = MAX_SIDE / max(h, w)
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    log.info("image %dx%d read at %dx%d", w, h, small.shape[1], small.shape[0])
    return _rescale(pipeline.process(small), 1.0 / f)


def predict_paths(
    pipeline: Pipeline, paths: list[str], annotate_dir: Path | None = None, fields: tuple[FieldConfig, ...] = ()
) -> Iterator[dict[str, Any]]:
    """One contract object per input path, in order; errors become ``{"image", "error"}``.

    With ``fields`` configured each object gains ``"fields"`` (format and min/max checked;
    the rules that need an earlier value apply in ``run``)."""
    for name in paths:
        try:
            loaded = load_image(Path(name))
            image = loaded.image
            result = read_digits(pipeline, image)
        except ImageError as exc:
            yield {"image": name, "error": str(exc)}
            continue
        except (cv2.error, MemoryError, ValueError) as exc:
            yield {"image": name, "error": f"cannot process image: {exc}".splitlines()[0]}
            continue
        if annotate_dir is not None:
            out = annotate_dir / (Path(name).stem + ".annotated.jpg")
            if not cv2.imwrite(str(out), annotate(image, result.digits, result.numbers)):
                log.error("%s: could not write annotated image", out)
        if loaded.factor != 1:  # a huge JPEG decoded reduced: boxes in the file's pixels
            result = _rescale(result, float(loaded.factor))
        obj: dict[str, Any] = {
            "image": name,
            "digits": [d.to_json() for d in result.digits],
            "numbers": [n.to_json() for n in result.numbers],
            "latency_ms": round(result.latency_ms, 2),
            "model": pipeline.classifier.name,  # which model read it, as in `run`'s readings (two ship)
        }
        if fields:
            obj["fields"] = {k: v.to_json() for k, v in read_fields(fields, result).items()}
        yield obj


def human_line(obj: dict[str, Any]) -> str:
    if "error" in obj:
        return f"{obj['image']}: error: {obj['error']}"
    numbers = obj["numbers"]
    if not numbers:
        return f"{obj['image']}: no digits found ({obj['latency_ms']:.1f} ms)"
    values = " ".join(n["value"] for n in numbers)
    if "fields" in obj:
        values += "  [" + ", ".join(f"{k}={v['value'] if v['status'] == 'ok' else v['status']}"
                                   for k, v in obj["fields"].items()) + "]"
    conf = min(n["confidence"] for n in numbers)
    return f"{obj['image']}: {values}  (confidence {conf:.2f}, {len(obj['digits'])} digits, {obj['latency_ms']:.1f} ms)"

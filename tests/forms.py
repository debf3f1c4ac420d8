"""The rendered form of the field tests (edge/bench/fields.py draws it), with the test glyphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.bench.fields import FORMATS, REGIONS, place_on_desk
from edge.bench.fields import render_sheet as render_with
from tests.imaging import hwd_glyphs, save

__all__ = ["REGIONS", "fields_yaml", "render_form", "render_sheet"]


def fields_yaml(meter_rules: str = "") -> str:
    """The ``fields:`` section for the form (the meter may get more rules)."""
    out = ["fields:"]
    for name, region in REGIONS.items():
        out.append(f"  - name: {name}")
        out.append(f"    region: [{', '.join(str(v) for v in region)}]")
        out.append(f'    format: "{FORMATS[name]}"')
        if name == "meter" and meter_rules:
            out.extend("    " + line for line in meter_rules.strip().splitlines())
    return "\n".join(out) + "\n"


def render_sheet(meter: str, count: str, ident: str, seed: int = 0) -> npt.NDArray[np.float32]:
    return render_with(hwd_glyphs(), {"meter": meter, "count": count, "id": ident}, seed)


def render_form(path: Path, meter: str = "04127", count: str = "38", ident: str = "5190264",
                dx: float = 0.0, dy: float = 0.0, angle: float = 0.0, seed: int = 0) -> Path:
    """Write the form as a picture file (PNG or JPEG, by ``path``'s suffix)."""
    return save(path, place_on_desk(render_sheet(meter, count, ident, seed), dx, dy, angle, seed))

"""examples/digit-edge.ipynb runs top to bottom in a real Jupyter kernel (nbclient + ipykernel),
from examples/ as a user opens it in a checkout: any cell's error fails the test."""

from __future__ import annotations

import importlib.util

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.imaging import DATA_DIR, REPO

NOTEBOOK = REPO / "examples" / "digit-edge.ipynb"


def outputs_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") + str(out.get("data", {}).get("text/html", "")))
    return "\n".join(parts)


def test_the_notebook_runs_top_to_bottom(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGIT_EDGE_DATA", str(DATA_DIR))  # the kernel inherits it: MNIST offline
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{NOTEBOOK.name}: a cell failed:\n{exc}", pytrace=False)
    text = outputs_text(nb)
    assert "digit-edge" in text and str(REPO) in text  # the checkout's package: nothing installed
    assert "regions" in text and "<th>1st</th>" in text  # regions, crops and the top answers
    assert "numbers: ['1207'" in text, text  # the demo frame's meter value, read by the pipeline
    if importlib.util.find_spec("tensorflow") is not None:  # the kernel runs this same Python
        assert "your model (int8)" in text and "reads the photo" in text, text
    else:
        assert "skipped: TensorFlow is not installed" in text
    assert "scene_0.jpg" in text and "readings.csv" in text

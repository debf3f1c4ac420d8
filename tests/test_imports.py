"""The arrows between the packages run one way, read from the source (every import, also the
ones under ``TYPE_CHECKING`` or inside a function): a cycle or a wrong-way import fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

EDGE = Path(__file__).resolve().parents[1] / "edge"


def imported(path: Path) -> set[str]:
    """Every module named by an import statement in ``path`` (absolute names)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def offenders(folder: str, forbidden: tuple[str, ...], skip: tuple[str, ...] = ()) -> list[str]:
    out = []
    for path in sorted((EDGE / folder).rglob("*.py")):
        rel = path.relative_to(EDGE.parent).as_posix()
        if any(rel.startswith(s) for s in skip):
            continue
        out += [f"{rel} imports {name}" for name in sorted(imported(path))
                if any(name == f or name.startswith(f + ".") for f in forbidden)]
    return out


def test_the_http_server_uses_the_live_state_never_the_runner() -> None:
    assert offenders("http", ("edge.runner", "edge.cli")) == []


def test_recognition_uses_no_service_part() -> None:
    service = ("edge.runner", "edge.http", "edge.sinks", "edge.sources", "edge.live", "edge.stats", "edge.cli",
               "edge.bench", "edge.field_service", "edge.state", "edge.gate")
    assert offenders("recognition", service) == []


@pytest.mark.parametrize("folder", [".", "http", "recognition", "sinks", "sources"])
def test_the_daemon_imports_no_tensorflow_converter_or_bench(folder: str) -> None:
    """The daemon's modules (all of edge/ but the bench, and the CLI that starts it lazily)."""
    forbidden = ("tensorflow", "keras", "converter", "bench", "edge.bench")
    found = offenders(folder, forbidden, skip=("edge/bench/", "edge/cli.py", "edge/bench.py"))
    if folder == ".":  # the top level only: the sub-packages have their own case
        found = [f for f in found if f.count("/") == 1]
    assert found == []


def test_the_package_imports_nothing_from_the_tests() -> None:
    """The bench ships in the wheel: what it (or anything in edge/) needs lives in edge/, e.g.
    the broker and the throttling proxy (edge/bench/broker.py, proxy.py), which the tests import."""
    assert offenders(".", ("tests",)) == []


def test_the_finder_sees_a_wrong_way_import(tmp_path: Path) -> None:
    """The scan itself: a lazy import inside a function is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from edge.runner import Runner\n    import tensorflow as tf\n", encoding="utf-8")
    assert {"edge.runner", "edge.runner.Runner", "tensorflow"} <= imported(bad)

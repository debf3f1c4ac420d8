"""`digit-edge bench --quick` from a wheel installed into a fresh venv outside the checkout.

One venv, and only the package itself goes into it: the runtime dependencies are found in this
test's own environment (a path line, not a site dir, so the checkout's editable install is not
seen). ``import edge`` must come from the venv, and no evaluation data is there.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

from tests.imaging import REPO


def test_a_wheel_installed_outside_the_checkout_runs_bench_quick(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(wheels)],
                   check=True, capture_output=True, timeout=600)
    wheel = next(wheels.glob("digit_edge-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    venv_site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                    check=True, capture_output=True, text=True).stdout.strip())
    (venv_site / "runtime-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n", encoding="utf-8")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["DIGIT_EDGE_DATA"] = str(tmp_path / "no-data")
    where = subprocess.run([str(py), "-c", "import edge, edge.bench.scenes; print(edge.__file__)"], cwd=work,
                           env=env, check=True, capture_output=True, text=True).stdout
    assert where.startswith(str(venv)), where
    proc = subprocess.run([str(venv / "bin" / "digit-edge"), "bench", "--quick"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "ms per frame" in out and "ratio" in out  # frame time per stage
    assert "At rest" in out and "gate" in out  # CPU at rest, gate on and off
    assert "Start-up and memory" in out and "peak RSS" in out and "exited" not in out
    assert "Not run: crops, indep, scenes" in out and "--data" in out

"""The live page's field editor in headless Chromium: draw, name, save → the config file keeps
its comments and gains the field, the daemon reloads, the field's value appears; a read-only
config makes the page say so and show the YAML."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
from pathlib import Path

import yaml

from edge.bench.broker import free_port
from tests.cdp import Browser
from tests.daemon import DIGIT_EDGE
from tests.http_daemon import Daemon, get, stop_daemon, wait_for, wait_listening

PASSWORD = "s3cret-pw"
CONFIG = """# my set-up: keep this comment
source: demo
fps: 10
state_dir: {state}
mqtt: {{enabled: false}}   # no broker here
http:
  enabled: true
  host: 127.0.0.1
  port: {port}
  password_file: {pw}
"""


def start(tmp: Path, config_dir: Path, read_only: bool = False) -> tuple[Daemon, Path, int]:
    config_dir.mkdir()
    (tmp / "pw").write_text(PASSWORD + "\n", encoding="utf-8")
    port = free_port()
    cfg = config_dir / "config.yaml"
    cfg.write_text(CONFIG.format(state=tmp / "state", port=port, pw=tmp / "pw"), encoding="utf-8")
    cmd = [DIGIT_EDGE, "run", "--config", str(cfg), "--output", "json"]
    if read_only:  # the sandboxed unit's view of /etc: the config directory mounted read-only
        script = (f'mount --bind "{config_dir}" "{config_dir}" && mount -o remount,bind,ro "{config_dir}" '
                  '&& exec "$@"')
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *cmd]
    out, err = tmp / "stdout.txt", tmp / "stderr.txt"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(cmd, stdout=o, stderr=e)
    return wait_listening(Daemon(proc, out, err)), cfg, port


async def draw_meter_field(b: Browser, url: str) -> None:
    """Open the page, wait for a picture, draw around the demo's meter value, name it, pick a format."""
    await b.goto(url)
    await b.wait_js("lastStatus && lastStatus.frame ? 1 : 0", "the page showing a frame")
    await b.js('$("edit").click()')
    rect = await b.js('(() => { const r = $("draw").getBoundingClientRect(); '
                      'return [r.left, r.top, r.width, r.height]; })()')
    x, y, w, h = rect
    await b.drag((x + 0.14 * w, y + 0.17 * h), (x + 0.80 * w, y + 0.52 * h))
    await b.js('$("fname").value = "meter"; $("fformat").value = "####"; 1')


def test_draw_save_reload_and_the_value_appears(tmp_path: Path) -> None:
    daemon, cfg, port = start(tmp_path, tmp_path / "etc")
    url = f"http://127.0.0.1:{port}/"

    async def drive() -> tuple[str, str, str]:
        async with Browser(tmp_path / "profile", "admin", PASSWORD) as b:
            await draw_meter_field(b, url)
            preview = await b.wait_js('/reads now: \\d{4}$/.test($("fpreview").textContent) && '
                                      '$("fpreview").textContent', "the live value of the drawn field")
            await b.js('$("fsave").click()')
            saved = await b.wait_js('/saved to/.test($("fmsg").textContent) && $("fmsg").textContent',
                                    "the page saying the field was saved")
            shown = await b.wait_js('/meter: \\d{4}/.test($("fields").textContent) && $("fields").textContent',
                                    "the field's value on the page after the reload", timeout=90)
            return preview, saved, shown

    try:
        preview, saved, shown = asyncio.run(drive())
        assert saved.startswith(f"saved to {cfg} (frame coordinates)"), saved  # the demo paper fills the frame
        text = cfg.read_text(encoding="utf-8")
        assert text.startswith("# my set-up: keep this comment\nsource: demo\n")
        assert "mqtt: {enabled: false}   # no broker here" in text
        field = yaml.safe_load(text)["fields"][0]
        assert field["name"] == "meter" and field["format"] == "####"
        drawn = [0.14, 0.17, 0.66, 0.35]  # the drag below, in fractions of the picture
        assert all(abs(a - b) < 0.02 for a, b in zip(field["region"], drawn, strict=True)), field
        wait_for(lambda: "configuration reloaded" in daemon.log(), "the reload", daemon)
        auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
        status = json.loads(get("127.0.0.1", port, "/api/status", auth)[2])
        assert status["fields"]["meter"]["status"] == "ok"
        assert re.fullmatch(r"reads now: \d{4}", preview) and re.search(r"meter: \d{4}", shown)
        assert get("127.0.0.1", port, "/api/fields")[0] == 401  # without the password: no editor
    finally:
        stop_daemon(daemon)


def test_read_only_config_page_says_so_and_shows_the_yaml(tmp_path: Path) -> None:
    daemon, cfg, port = start(tmp_path, tmp_path / "etc", read_only=True)
    before = cfg.read_text(encoding="utf-8")

    async def drive() -> tuple[str, str]:
        async with Browser(tmp_path / "profile", "admin", PASSWORD) as b:
            await draw_meter_field(b, f"http://127.0.0.1:{port}/")
            await b.js('$("fsave").click()')
            msg = await b.wait_js('/not saved/.test($("fmsg").textContent) && $("fmsg").textContent',
                                  "the page saying the config cannot be written")
            shown = await b.wait_js('!$("fyaml").hidden && $("fyaml").textContent', "the YAML to paste")
            return msg, shown

    try:
        msg, shown = asyncio.run(drive())
        assert f"cannot write {cfg} (Read-only file system)" in msg, msg
        assert shown.startswith("# my set-up: keep this comment\n")
        assert yaml.safe_load(shown)["fields"][0]["name"] == "meter"
        assert cfg.read_text(encoding="utf-8") == before
        assert "configuration reloaded" not in daemon.log()
    finally:
        stop_daemon(daemon)

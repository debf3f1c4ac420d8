"""`digit-edge bench --faults`: what the reliability promises come to, measured with real processes.

Three figures, each from fresh ``digit-edge run`` processes on this machine, in one run:

* **kills**: the daemon publishes to a real Mosquitto (a persistent QoS 1 subscriber
  listening) and is SIGKILLed N times at random moments while it numbers and spools readings;
  a last clean run flushes the spool. Produced (the last seq in ``state_dir``) against what
  the subscriber received: gaps (the promise: none), duplicates (allowed: at least once),
  seqs above the counter (none).
* **slow_link**: the same run on a direct link to the broker and through a throttling TCP proxy
  on loopback (10 KB/s, edge/bench/proxy.py): the daemon's peak RSS (the kernel's, for the
  child alone) through the slow link as a ratio to the direct one, and readings delivered.
* **slow_clients**: ``/healthz`` round trips with the live view idle, then while many slowloris
  clients (a header line a second, never finishing, reopened when closed) hold connections:
  the median as a ratio to idle, the 90th percentile, the slowest, and the answers that did not
  come (and why). The server keeps 64 connections and closes the oldest idle one for each new
  one, so a probe is answered unless 64 reconnects overtake it before its request line is
  read; a full listen backlog shows as a slow tail (the kernel retries a SYN after 1 s).

The MQTT figures need a ``mosquitto`` binary (edge/bench/broker.py finds it); without one they
are skipped with the reason, and the slow-client figure still runs.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from edge.bench.broker import HOST, Broker, BrokerError, Subscriber, free_port, mosquitto_path
from edge.bench.proxy import ThrottlingProxy
from edge.bench.rest import builtin_scenes
from edge.bench.speed import daemon_config, digit_edge_command, run_process, write_frames
from edge.bench.waiting import wait_until
from edge.state import SequenceCounter

SLOW_RATE = 10_000  # bytes/s through the proxy: a weak link, 5x less than the snapshots need
ENV = {"PYTHONWARNINGS": "ignore"}


def measure_faults(work: Path, model: str | None, quick: bool) -> dict[str, Any]:
    """The three figures (``--quick``: fewer kills, shorter runs, fewer slow clients)."""
    out: dict[str, Any] = {"quick": quick}
    if mosquitto_path() is None:
        out["mqtt_skipped"] = ("no mosquitto binary ($MOSQUITTO, PATH, /usr/sbin/mosquitto): the kill and "
                               "slow-link figures need a real broker; install mosquitto to measure them")
    else:
        try:
            out["kills"] = measure_kills(work / "kills", model, kills=3 if quick else 10)
            out["slow_link"] = measure_slow_link(work / "slow-link", model, frames=40 if quick else 80)
        except BrokerError as exc:
            out["mqtt_skipped"] = f"the broker would not run: {exc}"
    out["slow_clients"] = measure_slow_clients(work / "slow-clients", model, clients=200 if quick else 1000,
                                               probes=20 if quick else 50)
    return out


def _mqtt(port: int, prefix: str) -> str:
    return (f"{{host: {HOST}, port: {port}, topic_prefix: {prefix}, device_id: dev, keepalive_s: 60, "
            "homeassistant: {enabled: false}}")


def _seqs(sub: Subscriber, topic: str) -> list[int]:
    return [int(json.loads(m.payload)["seq"]) for m in sub.on(topic)]


def _last_seq(state_dir: Path) -> int:
    counter = SequenceCounter(state_dir)
    try:
        return counter.last()
    finally:
        counter.close()


def _printed(path: Path) -> list[int]:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    out = []
    for line in lines:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            out.append(int(json.loads(line)["seq"]))
    return out


def _kill_after_a_reading(run: list[str], out_path: Path, delay_s: float) -> bool:
    """Start ``run`` (stdout to ``out_path``), SIGKILL it ``delay_s`` after its first reading;
    False if it ended by itself first."""
    with out_path.open("wb") as out, open(os.devnull, "wb") as err:
        proc = subprocess.Popen(run, stdout=out, stderr=err, env={**os.environ, **ENV})
    try:
        wait_until(lambda: bool(_printed(out_path)) or proc.poll() is not None, 120, poll_s=0.02)
        time.sleep(delay_s)
        if proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        return True
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def measure_kills(work: Path, model: str | None, kills: int, seed: int = 14) -> dict[str, Any]:
    """SIGKILL ``kills`` times at a random moment after the first reading, then one clean run."""
    work.mkdir(parents=True, exist_ok=True)
    broker = Broker(work / "broker")
    broker.start()
    prefix = f"bench-faults-{os.getpid()}"
    topic = f"{prefix}/dev/reading"
    sub = Subscriber(broker, [topic], persistent=True)
    write_frames(builtin_scenes(40), work / "frames")  # a new value on each: a reading per frame
    cfg = daemon_config(work, work / "frames", model, fps=60, mqtt=_mqtt(broker.port, prefix))
    run = [*digit_edge_command(), "run", "--config", str(cfg), "--output", "json"]
    rng = random.Random(seed)
    printed: list[int] = []
    killed = 0
    try:
        for i in range(kills):
            out_path = work / f"run{i}.out"
            killed += _kill_after_a_reading(run, out_path, rng.uniform(0.0, 0.4))
            printed += _printed(out_path)
        last = work / "clean.out"
        with last.open("wb") as out:
            clean = subprocess.run(run, stdout=out, stderr=subprocess.PIPE, env={**os.environ, **ENV},
                                   timeout=300, check=False)
        printed += _printed(last)
        produced = _last_seq(work / "state")
        want = set(range(1, produced + 1))
        sub.wait_for(lambda _: want <= set(_seqs(sub, topic)), timeout=60)
        received = _seqs(sub, topic)
    finally:
        sub.close()
        broker.stop()
    distinct = set(received)
    return {
        "kills": killed, "produced": produced, "received": len(received), "received_distinct": len(distinct),
        "gaps": len(set(range(1, produced + 1)) - distinct), "duplicates": len(received) - len(distinct),
        "above_counter": len({s for s in distinct if s > produced}),
        "printed": len(printed), "printed_twice": len(printed) - len(set(printed)),
        "clean_exit_status": clean.returncode,
        **({"stderr": clean.stderr.decode(errors="replace").strip()[-300:]} if clean.returncode else {}),
    }


def measure_slow_link(work: Path, model: str | None, frames: int, fps: float = 4.0) -> dict[str, Any]:
    """The same run (``frames`` readings at ``fps``, each with its snapshot) direct and throttled."""
    work.mkdir(parents=True, exist_ok=True)
    broker = Broker(work / "broker")
    broker.start()
    write_frames(builtin_scenes(frames), work / "frames")
    out: dict[str, Any] = {"rate_bytes_s": SLOW_RATE, "frames": frames, "fps": fps}
    try:
        for name in ("direct", "slow"):
            prefix = f"bench-link-{name}-{os.getpid()}"
            topic = f"{prefix}/dev/reading"
            sub = Subscriber(broker, [topic, f"{prefix}/dev/snapshot"])  # straight to the broker: what got through
            proxy = ThrottlingProxy(broker.port, SLOW_RATE) if name == "slow" else None
            try:
                port = proxy.port if proxy is not None else broker.port
                cfg = daemon_config(work / name, work / "frames", model, fps=fps, mqtt=_mqtt(port, prefix))
                fig = run_process([*digit_edge_command(), "run", "--config", str(cfg), "--output", "json"],
                                  timeout=frames / fps + 120, env=ENV)
                time.sleep(0.5)  # what the broker had at the daemon's exit reaches the subscriber
                delivered = len(set(_seqs(sub, topic)))
                snapshots = len(sub.on(f"{prefix}/dev/snapshot"))
            finally:
                sub.close()
                if proxy is not None:
                    proxy.close()
            out[name] = {"peak_rss_mb": round(fig.max_rss_mb, 1), "seconds": round(fig.exit_s, 1),
                         "produced": _last_seq(work / name / "state"), "delivered": delivered,
                         "snapshots_delivered": snapshots,
                         "exit_status": fig.returncode, **({"stderr": fig.stderr_tail} if fig.returncode else {})}
    finally:
        broker.stop()
    out["rss_ratio"] = round(out["slow"]["peak_rss_mb"] / max(1e-9, out["direct"]["peak_rss_mb"]), 3)
    return out


class Slowloris:
    """``count`` connections that each send a header line a second and never end the request;
    one the server closes is opened again, as the attack does."""

    def __init__(self, host: str, port: int, count: int) -> None:
        self.host, self.port, self.count = host, port, count
        self.opened = self.closed_by_server = self.refused = 0
        self._socks: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slowloris", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def holding(self) -> int:
        return len(self._socks)

    def _open(self) -> bool:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=2.0)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            self.refused += 1
            return False
        self._socks.append(sock)
        self.opened += 1
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            while len(self._socks) < self.count and not self._stop.is_set() and self._open():
                pass
            for sock in list(self._socks):  # a trickle: one more header line on each
                try:
                    sock.sendall(b"X-a: b\r\n")
                except OSError:
                    self._socks.remove(sock)
                    sock.close()
                    self.closed_by_server += 1
            self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)
        for sock in self._socks:
            sock.close()
        self._socks.clear()


def _healthz_ms(port: int) -> float | str:
    """One ``GET /healthz`` on a new connection: the round trip in ms, or why no 200 came."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
        return (time.perf_counter() - t0) * 1000 if resp.status == 200 else f"status {resp.status}"
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        conn.close()


def _probe(port: int, probes: int) -> list[float | str]:
    out = []
    for _ in range(probes):
        out.append(_healthz_ms(port))
        time.sleep(0.1)
    return out


def _round_trips(samples: list[float | str]) -> dict[str, Any]:
    ok = [s for s in samples if isinstance(s, float)]
    failed = [s for s in samples if isinstance(s, str)]
    return {"probes": len(samples), "unanswered": len(failed), "why": sorted(set(failed)),
            "median_ms": round(statistics.median(ok), 2) if ok else None,
            "p90_ms": round(statistics.quantiles(ok, n=10)[-1], 2) if len(ok) >= 2 else None,
            "max_ms": round(max(ok), 2) if ok else None}


def measure_slow_clients(work: Path, model: str | None, clients: int, probes: int) -> dict[str, Any]:
    """``/healthz`` idle, then under ``clients`` slowloris connections, on the demo source."""
    work.mkdir(parents=True, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = clients + 256  # this process holds every slow connection
    if soft < want and (hard == resource.RLIM_INFINITY or hard >= want):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    elif soft < want:
        clients = max(1, hard - 256)
    port = free_port()
    cfg = daemon_config(work, None, model, fps=10, source="demo", extra=[f"http: {{enabled: true, port: {port}}}"])
    err_path = work / "daemon.err"
    with err_path.open("wb") as err:
        proc = subprocess.Popen([*digit_edge_command(), "run", "--config", str(cfg), "--output", "json"],
                                stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **ENV})
    attack = Slowloris(HOST, port, clients)
    out: dict[str, Any] = {"clients": clients}
    try:
        if not wait_until(lambda: isinstance(_healthz_ms(port), float) or proc.poll() is not None, 120, poll_s=0.2) \
                or proc.poll() is not None:
            return {**out, "error": f"the daemon did not answer /healthz: {err_path.read_text()[-300:]}"}
        _probe(port, 10)  # warm-up: the server's first answers are not its usual ones
        idle = _probe(port, probes)
        attack.start()
        wait_until(lambda: attack.opened >= clients, 60, poll_s=0.1)
        time.sleep(1.0)  # the trickle has started
        under = _probe(port, probes)
        out.update(opened=attack.opened, holding=attack.holding)
        attack.stop()
        out.update(closed_by_server=attack.closed_by_server, refused=attack.refused,
                   idle=_round_trips(idle), under=_round_trips(under), daemon_alive=proc.poll() is None)
    finally:
        attack.stop()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    i, u = out["idle"]["median_ms"], out["under"]["median_ms"]
    out["ratio"] = round(u / i, 2) if i and u else None
    return out


def fault_lines(f: dict[str, Any]) -> list[str]:
    """The figures for people, with what is promised beside each."""
    lines = [f"Faults (real processes, real Mosquitto, this machine){' (quick)' if f.get('quick') else ''}"]
    if "mqtt_skipped" in f:
        lines.append(f"  skipped: kills and slow link: {f['mqtt_skipped']}")
    if "kills" in f:
        k = f["kills"]
        ok = k["gaps"] == 0 and k["above_counter"] == 0 and k["received_distinct"] == k["produced"]
        lines.append(f"  {k['kills']} SIGKILLs of `digit-edge run` while publishing, then a clean run: seqs produced "
                     f"{k['produced']}, received {k['received_distinct']} distinct ({k['received']} messages): "
                     f"gaps {k['gaps']}, duplicates {k['duplicates']}, above the counter {k['above_counter']}"
                     f"   promise: no gap, duplicates allowed {'✓' if ok else '✗'}")
        if k.get("clean_exit_status"):
            lines.append(f"  ! the clean run exited {k['clean_exit_status']}: {k.get('stderr', '')}")
    if "slow_link" in f:
        s = f["slow_link"]
        d, w = s["direct"], s["slow"]
        lines.append(f"  slow link ({s['rate_bytes_s'] // 1000} KB/s proxy), {s['frames']} readings with snapshots at "
                     f"{s['fps']:g}/s: peak RSS {w['peak_rss_mb']:.0f} MB vs {d['peak_rss_mb']:.0f} MB direct, "
                     f"ratio {s['rss_ratio']:.2f}x; readings delivered during the run {w['delivered']} of "
                     f"{w['produced']} (direct {d['delivered']} of {d['produced']}), snapshots "
                     f"{w['snapshots_delivered']} (direct {d['snapshots_delivered']}: stale ones are dropped)")
        lines += [f"  ! {name} run exited {v['exit_status']}: {v.get('stderr', '')}" for name, v in
                  (("direct", d), ("slow", w)) if v["exit_status"]]
    c = f.get("slow_clients", {})
    if "error" in c:
        lines.append(f"  ! slow clients: {c['error']}")
    elif c:
        i, u = c["idle"], c["under"]
        ratio = f"{c['ratio']:.2f}x" if c.get("ratio") is not None else "-"
        lines.append(f"  /healthz under {c['clients']} slowloris clients: median {u['median_ms']} ms vs "
                     f"{i['median_ms']} ms idle, ratio {ratio}; 90% within {u['p90_ms']} ms, slowest "
                     f"{u['max_ms']} ms; unanswered "
                     f"{u['unanswered']} of {u['probes']}{' (' + ', '.join(u['why']) + ')' if u['why'] else ''}; "
                     f"the server closed {c['closed_by_server']} slow connections ({c['opened']} opened)")
    return [*lines, ""]

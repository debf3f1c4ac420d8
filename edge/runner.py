"""The daemon loop: source → pipeline → stabiliser → sinks, until stopped.

Signal handlers only set flags; the loop checks them once per frame. SIGTERM/SIGINT stop
the loop, then everything is closed in reverse order with a timeout each. SIGHUP re-reads
the config: a valid one restarts the pipeline with it, a bad one is logged and ignored.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

import cv2

from edge import __version__
from edge.annotate import annotate, encode_jpeg
from edge.config import Config, ConfigError, config_summary, find_config_path, load_config
from edge.gate import ChangeGate, Verdict
from edge.live import LiveView
from edge.logs import set_level as set_log_level
from edge.notify import Notifier
from edge.recognition.classify import Classifier, ModelError
from edge.recognition.pipeline import Pipeline
from edge.recognition.read import Stabilizer
from edge.sinks.base import FanOut, Sink
from edge.sinks.console import ConsoleSink
from edge.sinks.homeassistant import live_url
from edge.sources import FrameSource, SourceError, SourceExhausted, open_source
from edge.state import SequenceCounter, StateError
from edge.stats import LoopStats
from edge.types import Frame, FrameResult, Reading

if TYPE_CHECKING:
    from edge.field_service import FieldService
    from edge.http import HttpServer

log = logging.getLogger(__name__)
STILL_PREFIXES = ("file:", "dir:")
UNLIMITED = {"unlimited": True}  # answers to a SIGHUP are logged every time, never rate-limited
STARTUP_ERRORS = (ConfigError, ModelError, StateError, SourceError)  # what a bad configuration raises


@dataclass
class RunOptions:
    config_path: str | None = None
    source: str | None = None
    output: Literal["text", "json"] = "text"
    max_frames: int | None = None


@dataclass(frozen=True)
class _Session:
    """What one run of the loop works with (rebuilt on each reload)."""

    source: FrameSource
    pipeline: Pipeline
    stabilizer: Stabilizer
    counter: SequenceCounter
    sinks: FanOut
    model_name: str
    fields: FieldService | None = None
    gate: ChangeGate | None = None  # None: every frame is read (still sources, gate.enabled false)


class Runner:
    def __init__(self, config: Config, options: RunOptions, notifier: Notifier | None = None) -> None:
        self.config = config
        self.options = options
        self.notifier = notifier or Notifier()
        self.stop_event = threading.Event()
        self.reload_requested = threading.Event()
        self.live = LiveView(config_path=find_config_path(options.config_path), reload=self._on_hup_request)
        self.http: HttpServer | None = None
        self.started = False  # has the current configuration delivered its first frame?
        self._last_read: FrameResult | None = None  # what the gate's reference frame said

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_event.set()

    def _on_hup(self, signum: int, _frame: FrameType | None) -> None:
        self._on_hup_request()

    def _on_hup_request(self) -> None:
        """A reload, as SIGHUP asks for it (also from the live page's field editor)."""
        self.reload_requested.set()
        self.stop_event.set()

    def run(self) -> int:
        """Run until stopped or the source ends; reload on SIGHUP. Returns the exit status.

        A reloaded configuration that passes validation can still fail to start (a model
        file that is gone, an unreadable password file): then the previous one runs again,
        so a bad edit never takes an unattended device down.
        """
        # The loop is one thread by design, and OpenCV's own pool costs more than it gives on
        # a 640x480 frame: after each call its workers spin before they sleep (measured: a
        # paced decode + grey conversion loop 1.8 ms CPU a frame with the pool, 1.0 without).
        cv2.setNumThreads(1)
        previous: Config | None = None  # the configuration that ran before a reload
        while True:
            try:
                self._run_once()
            except STARTUP_ERRORS as exc:
                if previous is None or self.started:
                    raise
                log.error("the reloaded configuration failed to start, going back to the previous one: %s", exc,
                          extra=UNLIMITED)
                self.config, previous = previous, None
                set_log_level(self.config.log_level)
                self.stop_event.clear()
                continue
            if not self.reload_requested.is_set():
                return 0
            self.reload_requested.clear()
            self.stop_event.clear()
            try:
                previous, self.config = self.config, load_config(self.options.config_path)
                set_log_level(self.config.log_level)
                log.info("configuration reloaded from %s", self.options.config_path or "defaults")
            except ConfigError as exc:
                previous = None  # the running configuration starts again: nothing to go back to
                log.error("reload refused, keeping the running configuration: %s", exc, extra=UNLIMITED)
            except Exception:  # a bug in loading must not take an unattended device down either
                previous = None
                log.exception("reload failed unexpectedly, keeping the running configuration", extra=UNLIMITED)

    def _run_once(self) -> None:
        """Build everything for the current config, run the loop, close in reverse order."""
        cfg = self.config
        spec = self.options.source or cfg.source
        self.started = False
        self._last_read = None
        with ExitStack() as stack:
            self.notifier.status("loading model")
            classifier = Classifier(cfg.model, threads=cfg.classify.threads, model=cfg.classify.model)
            log.info("model %s loaded (%s, runtime %s)", classifier.name, classifier.path, classifier.runtime)
            still = spec.startswith(STILL_PREFIXES)
            k, n = (1, 1) if still else (cfg.read.stable_k, cfg.read.stable_n)
            counter = SequenceCounter(cfg.resolved_state_dir())
            stack.callback(counter.close)
            sinks = self._make_sinks(cfg, classifier, spec, counter)
            stack.callback(sinks.close, 3.0)
            self.live.model, self.live.stats = classifier, LoopStats()
            self.notifier.status(f"opening source {spec}")
            source = open_source(spec, cfg)
            stack.callback(source.close)
            stack.callback(self._log_stopped)
            self.live.source = source
            log.info("source %s open; reading digits", source.describe())
            fields = None
            if cfg.fields:  # imported only when used: the daemon without fields stays as it was
                from edge.field_service import FieldService

                fields = FieldService(cfg, counter.db, sinks, k, n, classifier.name)
            self.live.fields = fields  # before the server starts: /api/history answers from its first request
            if cfg.http.enabled:
                from edge.http import HttpServer

                self.http = HttpServer(self.live, cfg)
                stack.callback(self._stop_http)
                self.http.start()
            stack.callback(self._announce_stop)
            gate = ChangeGate(cfg.gate.threshold, cfg.gate.max_skip_s) if cfg.gate.enabled and not still else None
            session = _Session(source, Pipeline(classifier, cfg, still=still), Stabilizer(k, n, cfg.read.gap_factor),
                               counter, sinks, classifier.name, fields, gate)
            self._loop(session)

    def _announce_stop(self) -> None:
        # STOPPING=1 would make systemd treat a reload as the start of a shutdown.
        if self.reload_requested.is_set():
            self.notifier.reloading()
            self.notifier.status("reloading the configuration")
        else:
            self.notifier.stopping("stopping: flushing readings")

    def _stop_http(self) -> None:
        if self.http is not None:
            self.http.stop(timeout=3.0)
            self.http = None

    def _log_stopped(self) -> None:
        log.info("stopped after %d frames, %d readings", self.live.stats.frames, self.live.stats.readings)

    def _make_sinks(self, cfg: Config, classifier: Classifier, spec: str, counter: SequenceCounter) -> FanOut:
        sinks: list[Sink] = [ConsoleSink(self.options.output)]
        if cfg.mqtt.enabled:
            from edge.sinks.mqtt import MqttSink

            info = {
                "version": __version__,
                "model": classifier.describe(),
                "source": spec,
                "config": config_summary(cfg),
            }
            if counter.note:  # the state was damaged or lost: say so where people look
                info["state"] = counter.note
            mqtt = MqttSink(cfg.mqtt, cfg.resolved_state_dir(), info, db=counter.db, fields=cfg.fields,
                            configuration_url=live_url(cfg.http))
            self.live.mqtt = mqtt
            sinks.append(mqtt)
        return FanOut(sinks)

    def _loop(self, session: _Session) -> None:
        cfg, stats, source, sinks = self.config, self.live.stats, session.source, session.sinks
        period = 1.0 / cfg.fps
        next_stats = time.monotonic() + cfg.mqtt.stats_interval_s
        next_due = time.monotonic()
        waiting = False  # the STATUS line says "waiting for frames": put it back when they come
        while not self.stop_event.is_set():
            self.notifier.watchdog()
            try:
                frame = source.read(timeout=1.0)
            except SourceExhausted:
                log.info("source %s has no more frames", source.describe())
                break
            now = time.monotonic()
            if now >= next_stats:
                sinks.publish_stats(self._stats_payload(source))
                next_stats = now + cfg.mqtt.stats_interval_s
            if frame is None:
                stats.source_timeouts += 1
                self.notifier.status(f"waiting for frames from {source.describe()} ({source.state})")
                waiting = True
                continue
            if waiting and self.started:
                self.notifier.status(f"reading digits from {source.describe()}")
            waiting = False
            if not self.started:
                self.notifier.ready()
                self.notifier.status(f"reading digits from {source.describe()}")
                log.info("ready: first frame %dx%d from %s", frame.image.shape[1], frame.image.shape[0],
                         source.describe())
                self.started = True
            self._process(frame, session)
            if self.options.max_frames is not None and stats.frames >= self.options.max_frames:
                log.info("processed --max-frames %d frames", self.options.max_frames)
                break
            if source.live:  # finite sources pace themselves at fps
                next_due = max(next_due + period, time.monotonic() - period)
                self.stop_event.wait(max(0.0, next_due - time.monotonic()))

    def _verdict(self, frame: Frame, session: _Session) -> Verdict:
        if session.gate is None:
            return Verdict.READ
        verdict = session.gate.check(frame.image, frame.ts)
        return Verdict.READ if self._last_read is None else verdict

    def _process(self, frame: Frame, session: _Session) -> None:
        stats = self.live.stats
        verdict = self._verdict(frame, session)
        if verdict is Verdict.READ:
            try:
                result = session.pipeline.process(frame.image)
            except Exception:
                stats.errors += 1
                log.exception("frame %d could not be processed", frame.index)
                return
            if session.gate is not None:
                session.gate.accept(frame.ts)
            stats.record_frame(result.latency_ms, result.stage_ms)
            self._last_read = result
        else:  # not read: unchanged (confirms the last read frame) or still moving (confirms nothing)
            assert self._last_read is not None
            result = self._last_read
            stats.record_skip(moving=verdict is Verdict.MOVING)
        if self.http is not None:  # only the live view shows the last frame: else keep none alive
            if verdict is Verdict.READ:
                self.http.observe(result)
            with self.live.lock:
                self.live.frame, self.live.result = frame, result
        if verdict is Verdict.MOVING:
            return
        if session.fields is not None:
            session.fields.update(result, frame.ts)
        stable = session.stabilizer.update(result)
        if stable is None:
            return
        reading = Reading(
            seq=0,  # numbered below, in the transaction that also spools it
            ts=frame.ts,
            value=stable.value,
            confidence=stable.confidence,
            numbers=stable.numbers,
            digits=stable.digits,
            latency_ms=result.latency_ms,
            model=session.model_name,
            clipped=result.clipped,
            fields=session.fields.current() if session.fields is not None else None,
        )
        numbered: list[Reading] = []

        def store(seq: int) -> None:
            numbered.append(replace(reading, seq=seq))
            session.sinks.stage(numbered[0])

        seq = session.counter.next(store)  # never raises: a full disk still numbers the reading
        reading = numbered[0] if numbered else replace(reading, seq=seq)
        stats.readings += 1
        with self.live.lock:
            self.live.reading = reading
            self.live.recent.append(reading)
        jpeg = None
        if self.config.mqtt.enabled and self.config.mqtt.snapshot:
            jpeg = encode_jpeg(annotate(frame.image, result.digits, result.numbers))
        session.sinks.publish(reading, jpeg)

    def _stats_payload(self, source: FrameSource) -> dict[str, Any]:
        payload = self.live.stats.snapshot()
        if self.live.fields is not None:
            payload["fields"] = self.live.fields.counts()
        payload["source"] = {"spec": source.describe(), "state": source.state, "reconnects": source.reconnects}
        return payload

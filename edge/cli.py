"""``digit-edge``: the command line. The only place that prints besides the console sink.

Imports are lazy per subcommand so `digit-edge predict` does not pay for MQTT or HTTP,
and start-up to the first reading stays short.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from edge import __version__

log = logging.getLogger("edge")

SOURCE_HELP = (
    "frame source: demo (built-in scenes), usb:N, picamera[:N], file:PATH, dir:PATH, "
    "video:PATH, or an rtsp:// / http(s):// URL (default: the config's `source`)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digit-edge",
        description="Read handwritten digits from a camera or images with an int8 TFLite model "
        "and publish the readings to MQTT and the console.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"digit-edge {__version__}")
    parser.add_argument("--debug", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter

    def add_config(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config",
            metavar="PATH",
            help="YAML config (else $DIGIT_EDGE_CONFIG, /etc/digit-edge/config.yaml, built-in defaults)",
        )

    run = sub.add_parser("run", help="run the daemon: read frames, publish readings", formatter_class=fmt)
    add_config(run)
    run.add_argument("--source", metavar="SPEC", help=SOURCE_HELP)
    run.add_argument("--output", choices=("text", "json"), default="text",
                     help="stdout format: a human line or the reading JSON per reading")
    run.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames (exit 0)")

    pred = sub.add_parser("predict", help="read digits in image files", formatter_class=fmt)
    add_config(pred)
    pred.add_argument("--model", metavar="PATH", help="TFLite model (default: the config's, else the shipped one)")
    pred.add_argument("--json", action="store_true", help="one JSON object per image, one per line")
    pred.add_argument("--annotate", metavar="DIR", help="write each image with boxes and labels to DIR")
    pred.add_argument("images", nargs="+", metavar="IMAGE")

    cap = sub.add_parser("capture", help="save one frame from the source (to run predict on it)",
                         formatter_class=fmt)
    add_config(cap)
    cap.add_argument("--source", metavar="SPEC", help=SOURCE_HELP)
    cap.add_argument("out", metavar="OUT.jpg", help="where to save the frame (.jpg or .png)")

    doc = sub.add_parser("doctor", help="check config, model, camera, broker and permissions",
                         formatter_class=fmt)
    add_config(doc)

    hist = sub.add_parser("history", help="print a field's accepted values from the state database",
                          formatter_class=fmt)
    add_config(hist)
    hist.add_argument("--field", required=True, metavar="NAME", help="a field named in the config's fields:")
    hist.add_argument("--since", metavar="WHEN", help="ISO date/time (UTC), epoch seconds, or an age: 24h, 7d")
    hist.add_argument("--csv", action="store_true", help="CSV with a header: ts,field,value,number")

    bench = sub.add_parser("bench", help="measure accuracy and speed; prints figures", formatter_class=fmt)
    try:
        from edge.bench import add_arguments
    except ImportError:  # pragma: no cover - only while bench.py is missing
        pass
    else:
        add_arguments(bench)
    return parser


def setup_logging(level: str, debug: bool) -> None:
    from edge.logs import setup_logging as configure

    configure(level, debug=debug)
    if not debug:  # OpenCV's own warnings (e.g. on a failed camera open) duplicate our errors
        import cv2

        utils_logging = getattr(cv2.utils, "logging", None)  # OpenCV 5; 4.x has cv2.setLogLevel
        if utils_logging is not None:
            utils_logging.setLogLevel(utils_logging.LOG_LEVEL_ERROR)
        elif hasattr(cv2, "setLogLevel"):
            cv2.setLogLevel(2)  # 2 = LOG_LEVEL_ERROR


def cmd_run(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.runner import Runner, RunOptions

    config = load_config(args.config)
    setup_logging(config.log_level, args.debug)
    options = RunOptions(config_path=args.config, source=args.source, output=args.output,
                         max_frames=args.max_frames)
    runner = Runner(config, options)
    runner.install_signal_handlers()
    return runner.run()


def cmd_predict(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.predict import human_line, predict_paths
    from edge.progress import echo, track
    from edge.recognition.classify import Classifier
    from edge.recognition.pipeline import Pipeline

    config = load_config(args.config)
    setup_logging(config.log_level if args.debug else "WARNING", args.debug)
    annotate_dir = Path(args.annotate) if args.annotate else None
    if annotate_dir is not None:
        try:
            annotate_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--annotate {annotate_dir}: cannot create directory ({exc.strerror})") from None
    classifier = Classifier(args.model or config.model, threads=config.classify.threads, model=config.classify.model)
    pipeline = Pipeline(classifier, config, still=True)
    failed = 0
    results = predict_paths(pipeline, args.images, annotate_dir, config.fields)
    for obj in track(results, "images", unit="image", total=len(args.images)):  # a bar on a terminal only
        failed += "error" in obj
        echo(json.dumps(obj) if args.json else human_line(obj))
    if failed:
        print(f"digit-edge: {failed} of {len(args.images)} images could not be read", file=sys.stderr)
    return 1 if failed else 0


def cmd_capture(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.sources.capture import capture_frame

    config = load_config(args.config)
    setup_logging(config.log_level, args.debug)
    spec = args.source or config.source
    path = capture_frame(spec, config, Path(args.out))
    print(f"saved a frame from {spec} to {path}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from edge.doctor import run_doctor

    setup_logging("WARNING", args.debug)
    return run_doctor(args.config)


def cmd_history(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.field_store import FieldStore, parse_since, to_csv
    from edge.state import StateDb

    config = load_config(args.config)
    setup_logging("WARNING", args.debug)
    names = [f.name for f in config.fields]
    if args.field not in names:
        known = ", ".join(names) if names else "none: the config has no fields:"
        raise UserError(f"--field {args.field}: no such field (configured: {known})")
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        raise UserError(f"--{exc}") from None
    db = StateDb(config.resolved_state_dir())
    try:
        rows = FieldStore(db, config.history).rows(args.field, since)
    finally:
        db.close()
    if args.csv:
        sys.stdout.write(to_csv(rows))
    else:
        from edge.types import utc_timestamp

        for r in rows:
            print(f"{utc_timestamp(r.ts)}  {r.value}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from edge.bench import run_bench

    return run_bench(args)


class UserError(Exception):
    """A problem the user can fix; printed as one line without a traceback."""


COMMANDS = {"run": cmd_run, "predict": cmd_predict, "capture": cmd_capture, "doctor": cmd_doctor,
            "bench": cmd_bench, "history": cmd_history}


def without_openssl_hashes() -> None:
    """Keep OpenSSL's hash module out of the daemon: 3.4 MB of its peak-RSS budget (≤ 90 MB).

    pydantic imports secrets → hmac → hashlib, whose OpenSSL backend (``_hashlib``) maps and
    initialises libcrypto although ``run`` hashes nothing; without it hashlib and hmac use
    CPython's built-in md5/sha1/sha2/sha3/blake2. TLS to the broker is unaffected: ``ssl``
    loads OpenSSL by itself.
    """
    if "hashlib" not in sys.modules:  # too late once imported (e.g. tests calling main())
        sys.modules.setdefault("_hashlib", None)  # type: ignore[arg-type]  # None = not importable


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        without_openssl_hashes()
    from edge.config import ConfigError
    from edge.recognition.classify import ModelError
    from edge.state import StateError

    expected: tuple[type[BaseException], ...] = (UserError, ConfigError, ModelError, StateError)
    try:
        from edge.sources import SourceError
    except ImportError:  # pragma: no cover - only while sources are missing
        pass
    else:
        expected = (*expected, SourceError)
    try:
        return COMMANDS[args.command](args)
    except expected as exc:
        if args.debug:
            raise
        print(f"digit-edge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`digit-edge bench`: accuracy, recall and speed, with targets, against a bare baseline.

The measuring code lives beside this module in ``edge/bench/`` (scene generator, scoring,
baseline, timing); this module runs it and prints one table. Accuracy needs the
evaluation data (``--data``: MNIST, HwD-1000, USPS), which only developers have; without
it the parts that need none (speed per stage, start-up and memory, CPU at rest) run on the
built-in demo scenes, so a user measures their own board from an installed wheel.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge.bench.accuracy import Image
    from edge.recognition.pipeline import Pipeline
    from edge.types import FrameResult

REPO = Path(__file__).resolve().parents[2]  # the checkout, when run from one
TUNE_SEED, HELD_SEED, HARD_OFFSET = 0, 100_000, 50_000  # scene seeds; never tune on HELD
INDEP_SEED = 200_000  # edge/bench/render2.py's held-out scenes: a renderer nothing is tuned on
STANDARD = ("crops", "scenes", "indep", "speed", "startup", "rest")  # run when no --real/--sweeps is given
NO_DATA = ("speed", "startup", "rest", "real", "faults")  # run on built-in scenes (or --real's) without --data


class BenchError(Exception):
    """Something the user must fix before the bench can run; one line, no traceback."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="DIR",
                        help="evaluation data (mnist.npz, hwd1000/, usps/); default $DIGIT_EDGE_DATA, "
                        "else ../shared/data beside the checkout")
    parser.add_argument("--model", metavar="PATH", help="TFLite model (default: the config's, else the shipped one)")
    parser.add_argument("--config", metavar="PATH", help="YAML config whose detect/classify/read sections to use")
    parser.add_argument("--quick", action="store_true",
                        help="fewer scenes, frames and sweep digits (about 4x faster, noisier)")
    parser.add_argument("--scenes", type=int, metavar="N",
                        help="scenes per set (default 400, --quick 100); with --sweeps also digits per level "
                        "(default 48, --quick 24)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--skip", action="append", default=[], choices=(*STANDARD, "bare"),
                        help="leave out a part (repeatable): crops, scenes (the edge/bench/scenes.py sets), indep "
                        "(the independent edge/bench/render2.py sets), speed, startup, rest (CPU at rest, gate on and "
                        "off, and the delay to a change); 'bare' leaves the bare reader out of --real and --sweeps")
    parser.add_argument("--real", metavar="DIR",
                        help="score real photos and scans: DIR is one set (a folder with truth.json, "
                        "file -> [{label, box}]) or a folder of such sets, e.g. ../shared/data/real; "
                        "alone (without --all or --sweeps) it needs no --data")
    parser.add_argument("--sweeps", action="store_true",
                        help="vary one condition at a time (pen width, digit height, contrast, blur, rotation, "
                        "tilt, noise, chalk, ink and paper colour) on edge/bench/render2.py scenes and print digits "
                        "read right per level (about 2 min; --quick 1)")
    parser.add_argument("--sweeps-png", metavar="PATH",
                        help="where --sweeps draws its curves (default: the checkout's docs/sweeps.png)")
    parser.add_argument("--fields", action="store_true",
                        help="fields read right on rendered forms (edge/bench/fields.py), straight and with the sheet "
                        "moved and turned, for regions on the sheet and for fixed boxes")
    parser.add_argument("--faults", action="store_true",
                        help="the reliability figures with real processes (edge/bench/faults.py, about 2 min; "
                        "--quick 1): seqs received vs produced after 10 SIGKILLs of a daemon publishing to a real "
                        "Mosquitto (gaps, duplicates), peak RSS through a 10 KB/s link vs a direct one, /healthz "
                        "round trips under 1000 slowloris clients vs idle; needs a mosquitto binary for the first "
                        "two (skipped, saying so, without one)")
    parser.add_argument("--all", action="store_true",
                        help="with --real, --sweeps, --fields or --faults, run the standard parts too (without "
                        "them, only those run)")


def data_dir(arg: str | None) -> Path:
    path = Path(arg or os.environ.get("DIGIT_EDGE_DATA") or REPO.parent / "shared" / "data")
    need = [path / "mnist.npz", path / "hwd1000" / "dataset.csv", path / "usps" / "zip.test.gz"]
    missing = [str(p) for p in need if not p.exists()]
    if missing:
        raise BenchError(f"--data {path}: evaluation data not found (missing {', '.join(missing)}); "
                         "pass --data DIR or set DIGIT_EDGE_DATA")
    return path


def run_bench(args: argparse.Namespace) -> int:
    try:
        figures = measure(args)
    except BenchError as exc:
        print(f"digit-edge bench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(figures))
    else:
        from edge.bench.report import render

        print(render(figures))
        if "fields" in figures:
            from edge.bench.fields import field_lines

            print("\n".join(field_lines(figures["fields"])))
        if "faults" in figures:
            from edge.bench.faults import fault_lines

            print("\n".join(fault_lines(figures["faults"])))
    return 0


def parts(args: argparse.Namespace) -> set[str]:
    """What to run: the standard parts, unless --real/--sweeps ask for themselves alone (--all: both)."""
    alone = args.real or args.sweeps or getattr(args, "fields", False) or getattr(args, "faults", False)
    out = set() if alone and not args.all else set(STANDARD)
    out -= set(args.skip)
    if args.real:
        out.add("real")
    if args.sweeps:
        out.add("sweeps")
    if getattr(args, "fields", False):
        out.add("fields")
    if getattr(args, "faults", False):
        out.add("faults")
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    todo = parts(args)
    real_root = Path(args.real) if args.real else None
    if real_root is not None and not real_root.is_dir():
        raise BenchError(f"--real {real_root}: not a folder")
    data, needs_data = None, []
    if todo - set(NO_DATA):
        try:
            data = data_dir(args.data)
        except BenchError:
            if args.data or {"sweeps", "fields"} & todo:
                raise
            needs_data = sorted(todo - set(NO_DATA))  # no data here (a user's device): run what needs none
            todo -= set(needs_data)
    import cv2

    from edge.bench.accuracy import Reader, load_hwd, load_usps, real_sets, score_crops, score_real, score_scenes
    from edge.bench.baseline import BarePipeline
    from edge.bench.render2 import indep_glyphs, indep_set
    from edge.bench.scenes import mnist_glyphs, scene_set
    from edge.bench.speed import time_frames
    from edge.config import Config, load_config
    from edge.progress import track
    from edge.recognition.classify import Classifier
    from edge.recognition.pipeline import Pipeline

    cv2.setNumThreads(1)
    config = load_config(args.config) if args.config else Config()
    model = args.model or (str(config.model) if config.model else None)
    classifier = Classifier(model, threads=1, model=config.classify.model)
    ours = Pipeline(classifier, config)
    bare = BarePipeline(classifier, config.classify.min_confidence, config.read.gap_factor)
    readers: dict[str, Reader] = {"ours": ours, "bare": bare}
    n = args.scenes or (100 if args.quick else 400)
    out: dict[str, Any] = {"model": classifier.describe(), "scenes_per_set": n, "quick": bool(args.quick)}
    if needs_data:
        out["needs_data"] = needs_data

    if "crops" in todo and data is not None:
        hwd = list(zip(*load_hwd(data / "hwd1000"), strict=True))
        usps = list(zip(*load_usps(data / "usps" / "zip.test.gz"), strict=True))
        if args.quick:
            hwd, usps = hwd[::4], usps[::4]
        out["crops"] = {name: {"hwd1000": score_crops(r, track(hwd, f"{name} hwd1000", "digit")).as_dict(),
                               "usps": score_crops(r, track(usps, f"{name} usps", "digit")).as_dict()}
                        for name, r in readers.items()}

    sets: dict[str, list[Any]] = {}
    if {"scenes", "speed", "startup"} & todo and data is not None:
        glyphs = {"tune": mnist_glyphs(str(data / "mnist.npz"), "tune"),
                  "held": mnist_glyphs(str(data / "mnist.npz"), "held")}
        for part, base in (("tune", TUNE_SEED), ("held", HELD_SEED)):
            sets[f"ordinary/{part}"] = scene_set(glyphs[part], range(base, base + n), hard=False)
            sets[f"hard/{part}"] = scene_set(glyphs[part], range(base + HARD_OFFSET, base + HARD_OFFSET + n), True)
    scored = dict(sets) if "scenes" in todo else {}
    if "indep" in todo and data is not None:
        mix = indep_glyphs(data)
        scored["ordinary/indep"] = indep_set(mix, range(INDEP_SEED, INDEP_SEED + n), hard=False)
        scored["hard/indep"] = indep_set(mix, range(INDEP_SEED + HARD_OFFSET, INDEP_SEED + HARD_OFFSET + n), True)
    if scored:
        out["scenes"] = {name: {k: score_scenes(r, track(v, f"{name} {k}", "scene")).as_dict()
                                for k, v in scored.items()}
                         for name, r in readers.items()}
    for key, hard_set in (("hard_kinds", "hard/held"), ("indep_kinds", "hard/indep")):
        if hard_set in scored:
            held = scored[hard_set]
            kinds = sorted({k for scene in held for k in scene.hard})
            out[key] = {name: {k: score_scenes(r, [s for s in held if k in s.hard]).as_dict() for k in kinds}
                        for name, r in readers.items()}

    if "ordinary/held" not in sets and {"speed", "startup"} & todo:
        from edge.bench.rest import builtin_scenes

        sets["ordinary/held"] = builtin_scenes(100 if args.quick else 200)
        out["builtin_scenes"] = True
    if "speed" in todo:
        frames = sets["ordinary/held"][: 50 if args.quick else 200]
        times = time_frames(readers, frames, repeat=2 if args.quick else 3)
        out["speed"] = {**{name: t.as_dict() for name, t in times.items()},
                        "ratio": round(times["ours"].total / max(1e-9, times["bare"].total), 2)}

    if "startup" in todo:
        out["startup"] = _startup(sets["ordinary/held"], model)
    if "rest" in todo:
        from edge.bench.rest import measure_rest

        with tempfile.TemporaryDirectory(prefix="digit-edge-rest-") as tmp:
            out["rest"] = measure_rest(Path(tmp), model, 150 if args.quick else 300)

    chosen = {k: r for k, r in readers.items() if k == "ours" or "bare" not in args.skip}
    if real_root is not None:
        # photos somebody took are read as `predict` reads them (a still: a tight crop's
        # digit at the edge is read, huge images shrunk), so the figure is what a user sees
        still = {**chosen, "ours": _StillReader(Pipeline(classifier, config, still=True))}
        try:
            found = real_sets(real_root)
        except ValueError as exc:
            raise BenchError(str(exc)) from None
        if not found:
            raise BenchError(f"--real {real_root}: no truth.json in it or in its folders")
        out["real"] = {"root": str(real_root), **{
            name: {k: score_real(r, track(v, f"{name} {k}", "image"), gap_factor=config.read.gap_factor).as_dict()
                   for k, v in found.items()}
            for name, r in still.items()}}

    if "sweeps" in todo and data is not None:
        from edge.bench.sweeps import run_sweeps, write_sweeps_png

        digits = args.scenes or (24 if args.quick else 48)
        sweeps = run_sweeps(chosen, mnist_glyphs(str(data / "mnist.npz"), "tune"), digits)
        png = Path(args.sweeps_png or REPO / "docs" / "sweeps.png")
        png.parent.mkdir(parents=True, exist_ok=True)
        write_sweeps_png(png, sweeps)
        out["sweeps"] = {**sweeps, "png": str(png)}
    if "fields" in todo and data is not None:
        from edge.bench.accuracy import load_hwd as hwd_ink
        from edge.bench.fields import measure_fields

        images, labels = hwd_ink(data / "hwd1000")
        paper_glyphs: dict[int, list[Any]] = {d: [] for d in range(10)}
        for img, label in zip(images, labels, strict=True):
            paper_glyphs[label].append(255 - img)  # black ink on white, as on paper
        out["fields"] = measure_fields(classifier, paper_glyphs, args.scenes or (25 if args.quick else 100), HELD_SEED)
    if "faults" in todo:
        from edge.bench.faults import measure_faults

        with tempfile.TemporaryDirectory(prefix="digit-edge-faults-") as tmp:
            out["faults"] = measure_faults(Path(tmp), model, bool(args.quick))
    return out


class _StillReader:
    """The bench's ``Reader`` for real photos: ``predict``'s way (``read_digits``)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def process(self, image: Image) -> FrameResult:
        from edge.predict import read_digits

        return read_digits(self.pipeline, image)


def _startup(scenes: list[Any], model: str | None) -> dict[str, Any]:
    """Fresh processes: predict on one image, the bare reader on it, the daemon on 100 frames
    of a ``dir:`` source (``daemon``) and of the built-in ``demo`` source (``daemon_demo``)."""
    from edge.bench.speed import daemon_config, digit_edge_command, run_process, write_frames

    with tempfile.TemporaryDirectory(prefix="digit-edge-bench-") as tmp:
        folder = Path(tmp)
        frames = write_frames(scenes[:100], folder / "frames")
        model_args = ["--model", model] if model else []
        env = {"PYTHONWARNINGS": "ignore"}
        predict = run_process([*digit_edge_command(), "predict", "--json", *model_args, str(frames[0])], env=env)
        baseline = run_process([sys.executable, "-m", "edge.bench.baseline", str(frames[0]), *model_args],
                               env=env)
        config = daemon_config(folder, folder / "frames", model)
        run = [*digit_edge_command(), "run", "--config", str(config), "--output", "json",
               "--max-frames", str(len(frames))]
        daemon = run_process(run, env=env)
        demo = run_process([*run, "--source", "demo"], env=env)  # renders its scenes in-process
    out: dict[str, Any] = {}
    for name, fig in (("predict", predict), ("bare", baseline), ("daemon", daemon), ("daemon_demo", demo)):
        out[name] = {"first_result_s": round(fig.first_output_s, 3), "max_rss_mb": round(fig.max_rss_mb, 1),
                     "exit_status": fig.returncode}
        if fig.returncode != 0:
            out[name]["stderr"] = fig.stderr_tail
    return out

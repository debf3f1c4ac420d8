"""``digit-convert``: train the shipped MLP or CNN, convert a user's Keras model, evaluate int8 models.

Errors are one line naming the file and the problem, with a non-zero exit; ``--debug`` adds
tracebacks and TensorFlow's own logging. Inputs are checked before TensorFlow is imported,
so a mistyped path fails in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from converter import ConverterError, __version__
from converter.data import check_file, load_image_set, load_mnist

log = logging.getLogger("digit-convert")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="digit-convert",
        description="Train, convert (Keras → int8 TFLite) and evaluate digit-edge models.")
    p.add_argument("--version", action="version", version=f"digit-convert {__version__}")
    p.add_argument("--debug", action="store_true", help="tracebacks and TensorFlow logging")
    # --debug is also accepted after the command (default SUPPRESS keeps the global one).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="tracebacks and TensorFlow logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser(
        "train", parents=[common],
        help="train the seed MLP (or --arch cnn) on augmented MNIST → .keras, int8 .tflite, report")
    t.add_argument("--arch", choices=("mlp", "cnn"), default="mlp",
                   help="mlp: the seed's MLP, 10 outputs; cnn: a LeNet-class CNN with an 11th "
                        "'not a digit' output, also trained on the detector's crops of rendered "
                        "scenes (drawn by edge/bench/scenes.py) (default: %(default)s)")
    t.add_argument("--data", type=Path, metavar="MNIST.npz",
                   help="MNIST in Keras' npz layout (default: Keras' own download)")
    t.add_argument("--out", type=Path, default=Path("out/train"), metavar="DIR",
                   help="output directory (default: %(default)s)")
    t.add_argument("--epochs", type=_positive, default=40, metavar="N",
                   help="training epochs (default: %(default)s)")
    t.add_argument("--seed", type=int, default=1, metavar="S",
                   help="random seed; same seed, same weights (default: %(default)s)")
    t.add_argument("--batch-size", type=_positive, default=128, metavar="N",
                   help="batch size (default: %(default)s)")
    t.add_argument("--limit", type=_positive, metavar="N",
                   help="train on a class-balanced subset of N digits (quick trials)")
    t.add_argument("--no-augment", action="store_true", help="train on MNIST as it is")
    t.add_argument("--dropout", type=_fraction, metavar="P",
                   help="dropout after each hidden layer (cnn: before each dense layer), 0..0.9 "
                        "(default: 0.1 for mlp, 0.25 for cnn)")
    t.add_argument("--rotate", type=_degrees, default=12.0, metavar="DEG",
                   help="augmentation: random rotation within ±DEG degrees, 0..45 "
                        "(default: %(default)s)")
    t.add_argument("--label-smoothing", type=_fraction, default=0.0, metavar="E",
                   help="spread E of each target's probability over the other classes, 0..0.9 "
                        "(default: %(default)s)")
    t.add_argument("--pen-redraw", type=_fraction, default=0.0, metavar="P",
                   help="share of digits first redrawn along their skeleton with a uniform "
                        "pen, thin to thick, 0..0.9 (default: %(default)s)")
    t.add_argument("--validation", type=_positive, metavar="N",
                   help="hold out N training digits and show their accuracy each epoch")
    t.add_argument("--workers", type=int, default=1, choices=range(0, 9), metavar="0..8",
                   help="processes making augmented digits; 0: in the training process "
                        "(default: %(default)s)")
    t.add_argument("--threads", type=_positive, default=2, metavar="N",
                   help="TensorFlow threads (default: %(default)s)")
    t.add_argument("--scenes", type=_positive, default=1200, metavar="N",
                   help="cnn: rendered scenes to harvest detector crops from (default: %(default)s)")
    t.add_argument("--not-digit-share", type=_fraction, default=0.2, metavar="P",
                   help="cnn: share of non-digits in the training set (default: %(default)s)")
    t.add_argument("--not-digit-weight", type=float, default=1.0, metavar="W",
                   help="cnn: loss weight of a non-digit sample, digits 1 (default: %(default)s)")
    t.add_argument("--cache", type=Path, default=Path("out/cache"), metavar="DIR",
                   help="cnn: where harvested detector crops are kept for reruns (default: %(default)s)")
    t.add_argument("--pen-digits", type=Path, metavar="CSV",
                   help="also report accuracy on a labelled image set (image,label CSV of dark "
                        "ink on paper), normalised as the daemon does; never used for training")

    c = sub.add_parser(
        "convert", parents=[common],
        help="a Keras .h5/.keras digit classifier → full-integer int8 .tflite")
    c.add_argument("model", type=Path, metavar="MODEL.(h5|keras)")
    c.add_argument("--out", type=Path, metavar="MODEL.tflite",
                   help="output file (default: beside MODEL, named <MODEL>_int8.tflite)")
    c.add_argument("--representative", type=Path, metavar="MNIST.npz",
                   help="MNIST npz for calibration and scoring (default: Keras' own download)")

    e = sub.add_parser(
        "evaluate", parents=[common],
        help="accuracy of a .tflite model on MNIST test, through the daemon's code")
    e.add_argument("model", type=Path, metavar="MODEL.tflite")
    e.add_argument("--data", type=Path, metavar="MNIST.npz",
                   help="MNIST in Keras' npz layout (default: Keras' own download)")
    e.add_argument("--images", type=Path, metavar="CSV",
                   help="evaluate on labelled images (image,label CSV) instead of MNIST")
    e.add_argument("--json", action="store_true", help="one JSON object on stdout")
    return p


def _float_within(low: float, high: float, unit: str = "") -> Callable[[str], float]:
    """An argparse ``type``: a float in ``low..high``, else an error naming the range."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be within {low:g}..{high:g}{unit}, got {value}")
        return value
    return parse


_fraction = _float_within(0.0, 0.9)
_degrees = _float_within(0.0, 45.0, " degrees")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return {"train": _train, "convert": _convert, "evaluate": _evaluate}[args.command](args)
    except ConverterError as exc:
        if args.debug:
            raise
        print(f"digit-convert: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("digit-convert: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, unwritable --out, ...
        if args.debug:
            raise
        print(f"digit-convert: error: {exc}", file=sys.stderr)
        return 1


def _train(args: argparse.Namespace) -> int:
    data = load_mnist(args.data).limited(args.limit, args.seed)
    pen = (*load_image_set(args.pen_digits), str(args.pen_digits)) if args.pen_digits else None
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise ConverterError(f"{out}: --out must be a directory")
    from converter.quantize import quiet_tensorflow

    quiet_tensorflow(args.debug)
    from converter.augment import Augment
    from converter.train import TrainConfig, train

    dropout = args.dropout if args.dropout is not None else (0.25 if args.arch == "cnn" else 0.1)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                      dropout=dropout, label_smoothing=args.label_smoothing,
                      augment=None if args.no_augment else Augment(rotate_deg=args.rotate,
                                                                   p_pen=args.pen_redraw),
                      validation=args.validation or 0, workers=args.workers, arch=args.arch,
                      threads=args.threads, scenes=args.scenes,
                      not_digit_share=args.not_digit_share, not_digit_weight=args.not_digit_weight,
                      cache=str(args.cache))
    report = train(data, out, cfg, _command_line(), pen)
    m = report["model"]
    print(f"float {m['float_accuracy'] * 100:.2f}%  int8 {m['mnist_test_accuracy'] * 100:.2f}%  "
          f"agreement {m['agreement'] * 100:.2f}%  {m['size_bytes'] / 1024:.0f} KB  "
          f"({report['training']['seconds_per_epoch']:.1f} s/epoch)")
    if "pen_digits" in report:
        print(f"pen digits ({args.pen_digits}): {report['pen_digits']['accuracy'] * 100:.2f}%")
    if "not_digit_recall" in m:
        r = m["not_digit_recall"]
        print(f"not a digit: wins on {m['mnist_test_not_digit'] * 100:.2f}% of MNIST test digits; "
              f"caught {r['detector_recall'] * 100:.1f}% of unseen detector non-digits, "
              f"{r['synthetic_recall'] * 100:.1f}% of synthetic ones")
    print(f"wrote {out}/")
    return 0


def _convert(args: argparse.Namespace) -> int:
    check_file(args.model, "model file")
    data = load_mnist(args.representative)
    out: Path = args.out or args.model.with_name(f"{args.model.stem}_int8.tflite")
    from converter.quantize import quiet_tensorflow

    quiet_tensorflow(args.debug)
    from converter.convert import convert_model

    info = convert_model(args.model, out, data)
    print(f"{out}: int8 {info['mnist_test_accuracy'] * 100:.2f}%  float "
          f"{info['float_accuracy'] * 100:.2f}%  agreement {info['agreement'] * 100:.2f}%  "
          f"{info['size_bytes'] / 1024:.0f} KB")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    check_file(args.model, "model file")
    from converter.evaluate import evaluate_tflite, format_text, open_classifier

    if args.images is None and args.data is None:
        open_classifier(args.model)  # a bad model fails before the download
    if args.images:
        x, y = load_image_set(args.images)
        source = str(args.images)
    else:
        data = load_mnist(args.data)
        x, y, source = data.x_test, data.y_test, f"MNIST test ({data.source})"
    evaluation, _ = evaluate_tflite(args.model, x, y, source)
    print(json.dumps(evaluation.to_dict()) if args.json else format_text(evaluation))
    return 0


def _command_line() -> str:
    return shlex.join(["digit-convert", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())

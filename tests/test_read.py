"""Grouping digits into numbers, reading order, and the k-of-n stabiliser."""

from __future__ import annotations

from edge.recognition.read import Stabilizer, group_numbers
from edge.types import Box, Digit, FrameResult


def digit(label: int, x: int, y: int, h: int = 40, conf: float = 0.99) -> Digit:
    return Digit(label, conf, Box(x, y, int(h * 0.6), h))


def frame(*digits: Digit) -> FrameResult:
    ordered, numbers = group_numbers(digits, 0.6)
    return FrameResult(ordered, numbers, 1.0)


def test_two_lines_and_a_gap_make_three_numbers_in_reading_order() -> None:
    ds = [digit(7, 300, 200), digit(4, 10, 12), digit(1, 40, 10), digit(0, 70, 11)]
    ds += [digit(9, 200, 10), digit(8, 270, 205)]
    ordered, numbers = group_numbers(ds, 0.6)
    assert [n.value for n in numbers] == ["410", "9", "87"]
    assert [d.digit for d in ordered] == [4, 1, 0, 9, 8, 7]
    assert numbers[0].box.to_list() == [10, 10, 84, 42]


def test_tilted_line_stays_one_number() -> None:
    # 15 degrees of tilt: each digit ~8 px lower than its left neighbour at 40 px height.
    ds = [digit(i, 10 + 30 * i, 100 + 8 * i) for i in range(5)]
    _, numbers = group_numbers(ds, 0.6)
    assert [n.value for n in numbers] == ["01234"]


def test_leading_zero_is_kept_and_confidence_is_product() -> None:
    _, numbers = group_numbers([digit(0, 0, 0, conf=0.5), digit(7, 30, 0, conf=0.8)], 0.6)
    assert numbers[0].value == "07" and abs(numbers[0].confidence - 0.4) < 1e-9


def test_value_becomes_stable_after_k_of_n_and_is_announced_once() -> None:
    s = Stabilizer(k=3, n=5, gap_factor=0.6)
    f = frame(digit(4, 10, 10), digit(2, 40, 10))
    assert s.update(f) is None
    assert s.update(f) is None
    first = s.update(f)
    assert first is not None and first.value == "42"
    assert s.update(f) is None  # unchanged: not announced again


def test_one_flickering_digit_does_not_reset_the_number() -> None:
    s = Stabilizer(k=3, n=5, gap_factor=0.6)
    good, flicker = frame(digit(4, 10, 10), digit(2, 40, 10)), frame(digit(4, 10, 10), digit(7, 41, 11))
    got = [s.update(f) for f in (good, flicker, good, good)]
    assert [g.value for g in got if g] == ["42"]


def test_changed_value_and_then_nothing_are_announced() -> None:
    s = Stabilizer(k=2, n=3, gap_factor=0.6)
    a, b, empty = frame(digit(1, 10, 10)), frame(digit(2, 10, 10)), frame()
    seen = [r.value for r in (s.update(f) for f in (a, a, b, b, empty, empty)) if r]
    assert seen == ["1", "2", None]


def test_matching_is_by_position() -> None:
    s = Stabilizer(k=2, n=2, gap_factor=0.6)
    s.update(frame(digit(5, 10, 10)))
    # Same label far away is a different digit: no match, not stable yet.
    assert s.update(frame(digit(5, 300, 300))) is None


def test_a_changing_number_never_yields_a_mix_of_old_and_new() -> None:
    s = Stabilizer(k=3, n=5, gap_factor=0.6)
    old = frame(digit(1, 10, 10), digit(2, 40, 10), digit(0, 70, 10), digit(8, 100, 10))
    new = frame(digit(1, 10, 10), digit(2, 40, 10), digit(1, 70, 10), digit(1, 100, 10))
    mixed = frame(digit(1, 10, 10), digit(2, 40, 10), digit(0, 70, 10), digit(1, 100, 10))
    seen = [r.value for r in (s.update(f) for f in (old, old, old, mixed, new, new, new, new)) if r]
    assert seen == ["1208", "1211"]


def test_a_mark_much_shorter_than_its_number_is_left_out() -> None:
    """The dash after a cheque's amount or a full stop, read as a "digit", is no digit of the number;
    a digit two thirds the height of its neighbours still is."""
    def d(digit: int, x: int, h: int) -> Digit:
        return Digit(digit, 0.9, Box(x, 100 - h, max(4, h // 2), h))

    digits = [d(1, 0, 60), d(2, 40, 40), d(5, 80, 58), d(2, 120, 15)]  # the last: a dash, 1/4 as tall
    ordered, numbers = group_numbers(digits, 1.0, drop_marks=True)
    assert [n.value for n in numbers] == ["125"]
    assert [x.digit for x in ordered] == [1, 2, 5]
    assert [n.value for n in group_numbers(digits, 1.0)[1]] == ["1252"]  # a truth's numbers are what they are

"""pass@k: hand-computed values, the closed form 1 - C(n-c,k)/C(n,k) (exact fractions), properties, errors
that name the values, and the mean over problems that refuses to average over a k some problem lacks."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finetune.eval.passk import aggregate, not_computable, pass_at_k


def closed_form(n: int, c: int, k: int) -> float:
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (2, 1, 1, 0.5),
        (10, 3, 1, 0.3),  # pass@1 is c/n
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (20, 0, 10, 0.0),
        (10, 5, 6, 1.0),  # n - c < k: every draw of 6 holds a correct one
        (3, 3, 3, 1.0),
    ],
)
def test_known_values(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@given(st.integers(1, 400).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_matches_closed_form(nck: tuple[int, int, int]) -> None:
    n, c, k = nck
    assert pass_at_k(n, c, k) == pytest.approx(closed_form(n, c, k), rel=1e-9, abs=1e-12)


@given(st.integers(1, 200).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_bounded_and_monotonic(nck: tuple[int, int, int]) -> None:
    n, c, k = nck
    value = pass_at_k(n, c, k)
    assert 0.0 <= value <= 1.0
    if c < n:
        assert pass_at_k(n, c + 1, k) >= value - 1e-12  # one more correct sample never hurts
    if k < n:
        assert pass_at_k(n, c, k + 1) >= value - 1e-12  # nor one more draw


def test_large_n_is_stable() -> None:
    # comb(10000, 1000) has ~1400 digits: a naive float ratio overflows, the product form does not.
    value = pass_at_k(10_000, 10, 1000)
    assert math.isfinite(value)
    assert value == pytest.approx(closed_form(10_000, 10, 1000), rel=1e-9)


@pytest.mark.parametrize(
    ("n", "c", "k", "words"),
    [
        (3, 1, 5, ["k <= n", "n=3", "k=5"]),
        (3, 4, 1, ["c <= n", "n=3", "c=4"]),
        (3, 1, 0, ["k >= 1", "k=0"]),
        (3, -1, 1, ["c >= 0", "c=-1"]),
    ],
)
def test_invalid_values_are_named(n: int, c: int, k: int, words: list[str]) -> None:
    with pytest.raises(ValueError) as raised:
        pass_at_k(n, c, k)
    for word in words:
        assert word in str(raised.value)


def test_aggregate_is_the_mean_over_problems() -> None:
    per_problem = {"a": (5, 2), "b": (5, 0), "c": (5, 5)}
    result = aggregate(per_problem, [1, 2, 5])
    assert result[1] == pytest.approx((0.4 + 0.0 + 1.0) / 3)
    assert result[2] == pytest.approx((0.7 + 0.0 + 1.0) / 3)
    assert result[5] == pytest.approx((1.0 + 0.0 + 1.0) / 3)


def test_aggregate_reports_k_above_some_n_as_not_computable() -> None:
    per_problem = {"a": (20, 3), "short": (5, 1), "shorter": (1, 1)}
    result = aggregate(per_problem, [1, 10])
    assert result[1] == pytest.approx((3 / 20 + 1 / 5 + 1.0) / 3)
    assert result[10] is None  # not the mean over "a" alone
    assert not_computable(per_problem, 10) == ["short", "shorter"]
    assert not_computable(per_problem, 1) == []


def test_aggregate_of_nothing_is_none() -> None:
    assert aggregate({}, [1]) == {1: None}

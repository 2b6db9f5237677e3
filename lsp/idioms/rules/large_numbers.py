"""Large decimal numbers get `_` every three digits (and misplaced underscores are fixed).

Before:
    timeout = 300000
    limit = 1_0_0_0_0 + 1234567.5
After:
    timeout = 300_000
    limit = 10_000 + 1_234_567.5
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.nodes import replace

# Credo's LargeNumbers threshold: numbers above 9 999 need separators.
MIN_DIGITS = 5


def grouped(digits: str) -> str:
    """`1234567` → `1_234_567`."""
    head = len(digits) % 3 or 3
    return "_".join([digits[:head], *(digits[i : i + 3] for i in range(head, len(digits), 3))])


def canonical_integer(literal: str) -> str | None:
    """The delimited form of a base-10 integer part, or None when it should be left alone."""
    digits = literal.replace("_", "")
    if not digits.isascii() or not digits.isdigit() or (len(digits) > 1 and digits.startswith("0")):
        return None  # 0x/0o/0b literals and zero-padded numbers are written that way on purpose
    if len(digits) < MIN_DIGITS and "_" not in literal:
        return None
    return grouped(digits)


def rewrite(match: Match) -> list[Edit] | None:
    number = match.node("finding")
    literal = match.text(number)
    integer_part, dot, rest = literal.partition(".")
    canonical = canonical_integer(integer_part)
    if canonical is None or canonical == integer_part:
        return None
    return [replace(number, canonical + dot + rest)]


RULE = Rule(
    id="large_numbers",
    title="300000 → 300_000",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("timeout = 300000", "timeout = 300_000"),
        Example("limit = 1_0_0_0_0 + 1234567.5", "limit = 10_000 + 1_234_567.5"),
        Example(
            "defmodule Limits do\n  @max_bytes 10485760\n\n  def max(n) when n > 99999, do: -1234567890\nend",
            "defmodule Limits do\n  @max_bytes 10_485_760\n\n  def max(n) when n > 99_999, do: -1_234_567_890\nend",
        ),
        Example("x = 12345.678901e-3", "x = 12_345.678901e-3"),
        Example("y = 10_00", "y = 1_000"),
        # Already delimited, small, or not base 10.
        Example("x = 300_000 + 9999 + 1.5e10", None),
        Example("mask = 0xFFFFFFFF + 0b1010101010 + 0o777777", None),
    ),
)

"""`length(x) == 0` → `x == []`, `length(x) > 0` → `x != []`: constant time instead of a list walk.

In guards only the `== 0` form is rewritten: a failing `length/1` makes `length(x) > 0` false for a
non-list, where `x != []` would be true.

Before:
    if length(errors) > 0, do: {:error, errors}, else: :ok
After:
    if errors != [], do: {:error, errors}, else: :ok
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.enum_helpers import (
    PRECEDENCE,
    Expr,
    contains_comment,
    expr_of,
    in_context,
    in_guard,
    measured_call,
    zero_comparison,
)


def rewrite(match: Match) -> list[Edit] | None:
    node = match.node("finding")
    test = zero_comparison(match.source, node)
    found = measured_call(match.source, test[0], None, "length") if test else None
    if test is None or found is None or contains_comment(node):
        return None
    (measured, non_empty), (_call, subject) = test, found
    # In a guard, `length(x) > 0` fails for a non-list where `x != []` would pass: another clause runs.
    if non_empty and in_guard(node):
        return None
    op = "!=" if non_empty else "=="
    if subject is None:
        # Drop the `|> length()` step: `|>` binds tighter than `==`, so the chain stays one operand.
        pipe_left = measured.child_by_field_name("left")
        subject_text = match.source[measured.start_byte : pipe_left.end_byte].decode("utf-8")
    else:
        subject_text = expr_of(match.source, subject).operand_of(op, left=True)
    comparison = Expr(f"{subject_text} {op} []", PRECEDENCE[op], op)
    return [Edit(node.start_byte, node.end_byte, in_context(node, comparison))]


RULE = Rule(
    id="length_zero",
    title="length(x) == 0 → x == []",
    safety=Safety.MOSTLY_SAFE,
    risk="length/1 raised ArgumentError for a non-list; the comparison returns a boolean instead",
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("if length(errors) == 0, do: :ok, else: {:error, errors}", "if errors == [], do: :ok, else: {:error, errors}"),
        Example("def idle?(queue) when length(queue) == 0, do: true", "def idle?(queue) when queue == [], do: true"),
        Example("0 != length(a ++ b)", "a ++ b != []"),
        Example(
            "def pending(jobs) do\n  if jobs |> Enum.reject(&done?/1) |> length() === 0 do\n    :idle\n  end\nend",
            "def pending(jobs) do\n  if jobs |> Enum.reject(&done?/1) == [] do\n    :idle\n  end\nend",
        ),
        Example("ok = true == length(xs) > 0", "ok = true == (xs != [])"),
        Example("length(a || b) == 0", "(a || b) == []"),
        # Not a zero test, or a length that is not Kernel.length/1.
        Example("length(xs) > 1", None),
        Example("String.length(s) == 0", None),
        Example("def busy?(queue) when length(queue) > 0, do: true", None),
    ),
)

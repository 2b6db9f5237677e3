"""`compare(a, b) == :gt / :lt` → `after?/2` / `before?/2` for DateTime, NaiveDateTime, Date and Time.

Before:
    DateTime.compare(expires_at, now) == :lt
    :gt == Date.compare(a, b)
After:
    DateTime.before?(expires_at, now)
    Date.after?(a, b)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.single_helpers import stdlib_call

PREDICATES = {":gt": "after?", ":lt": "before?"}


def rewrite(match: Match) -> list[Edit] | None:
    comparison, compare = match.node("finding"), match.node("compare")
    call = stdlib_call(match, compare, match.text("module"), "compare", 2)
    if call is None:
        return None
    left, right = comparison.child_by_field_name("left"), comparison.child_by_field_name("right")
    # Only whitespace may sit around the operator: a comment there would be dropped with it.
    if match.source[left.end_byte : right.start_byte].strip() not in (b"==", b"==="):
        return None
    # Drop `== :gt` (or `:gt ==`).
    if right == match.node("result"):
        dropped = Edit(left.end_byte, comparison.end_byte, "")
    else:
        dropped = Edit(comparison.start_byte, right.start_byte, "")
    return [call.rename(PREDICATES[match.text("result")]), dropped]


RULE = Rule(
    id="datetime_compare",
    title="DateTime.compare(a, b) == :gt → DateTime.after?(a, b)",
    safety=Safety.SAFE,
    min_elixir=(1, 15),
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "expired? = DateTime.compare(expires_at, now) == :lt",
            "expired? = DateTime.before?(expires_at, now)",
        ),
        Example("if :gt == Date.compare(a, b), do: a, else: b", "if Date.after?(a, b), do: a, else: b"),
        Example(
            "def late?(event) do\n  event.at\n  |> NaiveDateTime.compare(deadline()) === :gt\nend",
            "def late?(event) do\n  event.at\n  |> NaiveDateTime.after?(deadline())\nend",
        ),
        Example(
            "Enum.filter(slots, fn slot ->\n  Time.compare(slot.start, ~T[09:00:00]) == :lt\nend)",
            "Enum.filter(slots, fn slot ->\n  Time.before?(slot.start, ~T[09:00:00])\nend)",
        ),
        # `:eq` and `!=` have no single predicate.
        Example("DateTime.compare(a, b) == :eq", None),
        Example("DateTime.compare(a, b) != :gt", None),
        Example("alias MyApp.Date\nDate.compare(a, b) == :gt", None),
    ),
)

"""Checks every idiom rule must pass: its examples (before → after in one pass, or no finding), the
result parses cleanly, and a second pass changes nothing."""

from __future__ import annotations

from lsp.idioms.base import Example, Rule
from lsp.idioms.engine import apply_edits, checked_findings, disjoint
from lsp.syntax.parser import count_errors, make_parser


def one_pass(rule: Rule, source: str) -> str:
    """Apply every non-overlapping checked finding of `rule` once."""
    data = source.encode("utf-8")
    tree = make_parser().parse(data)
    findings = disjoint(checked_findings([rule], tree, data))
    return apply_edits(data, [e for f in findings for e in f.edits]).decode("utf-8")


def finding_count(rule: Rule, source: str) -> int:
    data = source.encode("utf-8")
    return len(checked_findings([rule], make_parser().parse(data), data))


def parse_errors(source: str) -> int:
    return count_errors(make_parser().parse(source.encode("utf-8")).root_node)


def assert_example(rule: Rule, example: Example) -> None:
    if example.after is None:
        assert finding_count(rule, example.before) == 0, f"{rule.id} must not fire on:\n{example.before}"
        return
    assert parse_errors(example.before) == 0, f"example input does not parse:\n{example.before}"
    result = one_pass(rule, example.before)
    assert result == example.after, f"{rule.id}:\n--- before\n{example.before}\n--- got\n{result}\n--- want\n{example.after}"
    assert parse_errors(result) == 0, f"{rule.id} output does not parse:\n{result}"
    assert one_pass(rule, result) == result, f"{rule.id} is not idempotent on:\n{result}"


def assert_well_formed(rule: Rule) -> None:
    """At least three firing examples and one that must not fire; a docstring with before/after."""
    firing = [e for e in rule.examples if e.after is not None]
    silent = [e for e in rule.examples if e.after is None]
    assert len(firing) >= 3, f"{rule.id}: needs at least 3 before/after examples"
    assert silent, f"{rule.id}: needs an example where it must not fire"
    assert "Before:" in rule.doc and "After:" in rule.doc, f"{rule.id}: docstring lacks Before:/After:"
    assert rule.title and rule.id.replace("_", "").isalnum()
    if rule.safety != "safe":
        assert rule.risk, f"{rule.id}: a {rule.safety} rule must say its risk"

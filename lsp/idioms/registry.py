"""The ordered rule registry: fix-all and the action list follow this order.

Order matters where rules feed each other: pipe-shape rules run before the Enum fusions that read pipe
steps, and control-flow rules after expression rules, so one fix-all pass does most of the work.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import import_module
from pathlib import Path

from lsp.config import IdiomSettings, parse_version
from lsp.idioms.base import Rule

RULE_MODULES: tuple[str, ...] = (
    # Deprecations and single expressions.
    "logger_warn",
    "datetime_compare",
    "apply_literal_args",
    "large_numbers",
    "zero_arity_def_parens",
    "pattern_var_on_right",
    "negated_equality",
    # Map and Keyword.
    "map_merge_single_key",
    "keyword_merge_single_key",
    "map_drop_single_key",
    # Enum fusions, before the pipe rules: a fusion rewrites `Enum.map(xs, f) |> Enum.join()` in one
    # step, where lifting the pipe start first would take three passes to the same result.
    "enum_map_join",
    "enum_map_intersperse",
    "enum_map_new",  # before enum_into_empty: `map |> into(%{})` fuses in one step
    "enum_into_empty",
    "enum_filter_count",
    "enum_filter_first",
    "enum_filter_filter",
    "enum_map_map",
    "enum_sort_reverse",
    "enum_reverse_concat",
    "enum_reverse_append",
    "enum_count_zero",
    "length_zero",
    # Pipes.
    "pipe_into_anonymous_fn",
    "redundant_then",
    "utc_now_truncate",
    "pipe_parentheses",
    "pipeify_nested_pipe",
    "pipe_chain_start",
    "single_pipe",
    # Control flow; if_else_nil first so `unless c, do: x, else: nil` stays an unless.
    "if_else_nil",
    "double_negation_condition",
    "unless_negated",
    "unless_else",
    "negated_if_else",
    "cond_to_if",
    "case_boolean",
    "implicit_try",
    "with_identity_else",
    "with_redundant_last_clause",
    "with_arrow_to_match",
    "with_single_clause",
    # Module directives; expanding multi-aliases before sorting the runs they produce.
    "alias_expand_multi",
    "alias_sort",
)

# What Debian's elixir (the oldest we test against) supports; used when nothing says otherwise.
DEFAULT_ELIXIR_VERSION = (1, 14)


@cache
def all_rules() -> tuple[Rule, ...]:
    rules = tuple(import_module(f"lsp.idioms.rules.{name}").RULE for name in RULE_MODULES)
    ids = [rule.id for rule in rules]
    if ids != list(RULE_MODULES):
        raise RuntimeError("each rule module's RULE.id must equal its module name")
    return rules


def rule_by_id(rule_id: str) -> Rule | None:
    return next((rule for rule in all_rules() if rule.id == rule_id), None)


def active_rules(settings: IdiomSettings, elixir_version: tuple[int, int]) -> tuple[Rule, ...]:
    disabled = set(settings.disabled_rules)
    return tuple(r for r in all_rules() if r.id not in disabled and r.min_elixir <= elixir_version)


def unknown_rule_ids(settings: IdiomSettings) -> list[tuple[str, str]]:
    """(setting name, rule id) for every id the settings name that no rule has."""
    known = {rule.id for rule in all_rules()}
    named = [("disabledRules", r) for r in settings.disabled_rules] + [("quietRules", r) for r in settings.quiet_rules]
    return [(setting, rule_id) for setting, rule_id in named if rule_id not in known]


def mix_elixir_requirement(root: Path | None) -> tuple[int, int] | None:
    """The lower bound of `elixir: "~> 1.15"` (or ">= 1.15.0") in the project's mix.exs."""
    if root is None:
        return None
    try:
        text = (root / "mix.exs").read_text(encoding="utf-8")
    except OSError:
        return None
    found = re.search(r"elixir:\s*\"\s*(?:~>|>=|==)?\s*(\d+\.\d+(?:\.\d+)?)", text)
    return parse_version(found[1]) if found else None

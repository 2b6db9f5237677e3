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
    "enum_filter_count",
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


def unknown_rule_ids(settings: IdiomSettings) -> list[str]:
    known = {rule.id for rule in all_rules()}
    return [rule_id for rule_id in settings.disabled_rules if rule_id not in known]


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

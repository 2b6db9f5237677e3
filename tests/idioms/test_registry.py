"""The registry as a whole: every rule registered, well-formed and tested; examples hold; docs in sync;
safe rules keep program behaviour under real Elixir; settings switch rules off."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lsp.config import IdiomSettings
from lsp.idioms import docs
from lsp.idioms.base import Safety
from lsp.idioms.registry import RULE_MODULES, active_rules, all_rules, unknown_rule_ids
from tests.idioms.harness import assert_example, assert_well_formed
from tests.idioms.semantics import assert_same_behaviour, load_programs

ROOT = Path(__file__).resolve().parents[2]
RULES = all_rules()
EXAMPLES = [(rule, example) for rule in RULES for example in rule.examples]


def test_every_rule_module_is_registered_once():
    on_disk = {p.stem for p in (ROOT / "lsp" / "idioms" / "rules").glob("*.py") if p.stem != "__init__"}
    assert set(RULE_MODULES) == on_disk
    assert len(RULE_MODULES) == len(set(RULE_MODULES))


def test_at_least_25_rules():
    assert len(RULES) >= 25


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_is_well_formed_with_query_and_tests(rule):
    assert_well_formed(rule)
    assert (ROOT / "grammars" / "elixir" / "queries" / "idioms" / f"{rule.id}.scm").exists()
    rule.query  # compiles  # noqa: B018


@pytest.mark.parametrize(("rule", "example"), EXAMPLES, ids=[f"{r.id}-{i}" for r in RULES for i in range(len(r.examples))])
def test_examples(rule, example):
    assert_example(rule, example)


def test_docs_are_generated_from_the_registry():
    assert (ROOT / "docs" / "idioms.md").read_text(encoding="utf-8") == docs.render(), (
        "docs/idioms.md is stale: python -m lsp.idioms.docs > docs/idioms.md"
    )


SEMANTIC_RULES = [r for r in RULES if r.safety is not Safety.UNSAFE and load_programs(r.id)]


@pytest.mark.skipif(shutil.which("elixir") is None, reason="needs Debian's elixir (make test installs it)")
def test_safe_rules_keep_behaviour_under_real_elixir():
    # Rules whose output needs a newer Elixir than the one installed cannot be run here.
    from lsp.idioms.elixir_check import ElixirChecker

    installed = ElixirChecker().version() or (1, 14)
    runnable = [r for r in SEMANTIC_RULES if r.min_elixir <= installed]
    missing = [r.id for r in RULES if r.safety is Safety.SAFE and r.min_elixir <= installed and not load_programs(r.id)]
    assert not missing, f"safe rules without programs: {missing}"
    assert_same_behaviour(runnable)


def test_settings_switch_rules_and_versions():
    everything = active_rules(IdiomSettings(), (9, 99))
    assert len(everything) == len(RULES)
    first = RULES[0].id
    assert first not in {r.id for r in active_rules(IdiomSettings(disabled_rules=[first]), (9, 99))}
    old = active_rules(IdiomSettings(), (1, 0))
    assert all(r.min_elixir <= (1, 0) for r in old)
    assert unknown_rule_ids(IdiomSettings(disabled_rules=[first, "nope"], quiet_rules=["hush"])) == [
        ("disabledRules", "nope"),
        ("quietRules", "hush"),
    ]

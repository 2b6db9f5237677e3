"""The LSP-facing service, called directly: findings at a cursor, action lists, resolution, staleness."""

from __future__ import annotations

import time

import pytest
from lsprotocol import types

from lsp.actions.service import FIX_ALL_KIND, MODEL_TITLE, IdiomService, action_data
from lsp.config import IdiomSettings
from lsp.documents import Document, Position

TEXT = """defmodule Shop.Stats do
  def active(users) do
    users
    |> Enum.filter(& &1.active)
    |> Enum.count()
  end

  def label(paid?) do
    case paid? do
      true -> "paid"
      false -> "open"
    end
  end
end
"""


@pytest.fixture
def service():
    service = IdiomService()
    # No elixir checks here: the service's own logic is under test (the checker has its own tests).
    service.configure(IdiomSettings(elixir_path=""), None)
    return service


def _doc(text: str = TEXT) -> Document:
    return Document("file:///tmp/stats.ex", text, 1)


def _byte(doc: Document, line: int, character: int) -> int:
    return doc.byte_offset(Position(line, character))


def test_a_cursor_finds_a_multi_line_finding_without_any_cached_analysis(service):
    doc = _doc()
    at = _byte(doc, 3, 8)  # on `Enum.filter`, while the finding's node is the `Enum.count` call below
    assert [f.rule_id for f in service.findings_in(doc, at, at)] == ["enum_filter_count"]
    assert service.findings_in(doc, _byte(doc, 0, 3), _byte(doc, 0, 3)) == []


def test_actions_for_a_cursor(service):
    doc = _doc()
    at = _byte(doc, 3, 8)
    actions = service.actions(doc, at, at, None, resolve_edits=True, model_available=True)
    titles = [a.title for a in actions]
    assert titles[0] == "Make idiomatic: Enum.filter |> Enum.count → Enum.count/2"
    assert actions[0].kind == types.CodeActionKind.QuickFix and actions[0].edit is None
    assert actions[0].diagnostics and actions[0].diagnostics[0].code == "enum_filter_count"
    assert any(a.kind == FIX_ALL_KIND for a in actions)
    assert titles[-1] == MODEL_TITLE
    # Without a model there is no model action; `only` filters kinds.
    assert MODEL_TITLE not in [a.title for a in service.actions(doc, at, at, None, True, False)]
    only = service.actions(doc, at, at, [types.CodeActionKind.SourceFixAll], True, True)
    assert [a.kind for a in only] == [FIX_ALL_KIND]


def test_unsafe_actions_carry_their_risk_and_no_diagnostic(service):
    doc = _doc()
    at = _byte(doc, 8, 6)
    unsafe = [a for a in service.actions(doc, at, at, None, True, False) if "unsafe" in a.title]
    assert len(unsafe) == 1 and unsafe[0].kind == types.CodeActionKind.RefactorRewrite
    assert "CaseClauseError" in unsafe[0].title or "truthy" in unsafe[0].title
    assert "case_boolean" not in {d.code for d in service.diagnostics(doc)}


def test_clients_without_resolve_get_edits_at_once(service):
    doc = _doc()
    at = _byte(doc, 3, 8)
    actions = service.actions(doc, at, at, None, resolve_edits=False, model_available=True)
    assert all(a.edit is not None for a in actions)
    assert MODEL_TITLE not in [a.title for a in actions], "the model rewrite needs codeAction/resolve"


def test_resolve_rule_and_fix_all_and_staleness(service):
    doc = _doc()
    at = _byte(doc, 3, 8)
    rule_action, fix_all = service.actions(doc, at, at, None, True, False)[:2]
    resolved = service.resolve(doc, rule_action)
    (change,) = resolved.edit.document_changes
    assert change.text_document.version == 1
    assert [e.new_text for e in change.edits] == ["Enum.count(& &1.active)"]
    assert service.resolve(doc, fix_all).edit is not None
    stale = Document(doc.uri, TEXT + "\n", 2)
    again = service.resolve(stale, service.actions(doc, at, at, None, True, False)[0])
    assert again.edit is None and "changed" in again.disabled.reason


def test_action_data_round_trips_as_named_tuples(service):
    from collections import namedtuple

    data = {"uri": "u", "version": 1, "action": "rule"}
    as_tuple = namedtuple("Data", data)(**data)
    assert action_data(types.CodeAction(title="t", data=as_tuple)) == data


def test_disabled_service_offers_nothing(service):
    service.configure(IdiomSettings(enabled=False, elixir_path=""), None)
    doc = _doc()
    assert service.actions(doc, 0, len(doc.source), None, True, True) == []
    assert service.diagnostics(doc) == []


def test_project_elixir_version_from_mix_exs(tmp_path):
    (tmp_path / "mix.exs").write_text('def project, do: [app: :shop, elixir: "~> 1.17"]\n')
    service = IdiomService()
    service.configure(IdiomSettings(elixir_path=""), tmp_path)
    assert service.elixir_version == (1, 17) and service.version_source == "mix.exs"
    assert "datetime_compare" in {r.id for r in service.rules}
    service.configure(IdiomSettings(elixir_path="", elixir_version="1.14"), tmp_path)
    assert "datetime_compare" not in {r.id for r in service.rules}


def test_quiet_rules_keep_actions_but_no_diagnostics(service):
    doc = _doc()
    service.configure(IdiomSettings(elixir_path="", quiet_rules=["enum_filter_count"]), None)
    assert "enum_filter_count" not in {d.code for d in service.diagnostics(doc)}
    at = _byte(doc, 3, 8)
    assert any("Enum.count/2" in a.title for a in service.actions(doc, at, at, None, True, False))


def test_an_analysis_overtaken_by_a_settings_change_is_not_served(service):
    """Diagnostics analyse on a thread; if the settings change meanwhile (a rule disabled), what that
    analysis found under the old rules must not be listed for the document afterwards."""
    doc = _doc()
    changed = []

    def settings_change_midway() -> None:
        if not changed:
            changed.append(True)
            service.configure(IdiomSettings(elixir_path="", disabled_rules=["enum_filter_count"]), None)

    stale = service.analyse(doc, settings_change_midway)

    assert changed, "the analysis never paused"
    assert "enum_filter_count" in {f.rule_id for f in stale}  # it ran with the old rules
    at = _byte(doc, 3, 8)
    assert service.findings_in(doc, at, at) == []
    assert "enum_filter_count" not in {f.rule_id for f in service.analyse(doc)}


NESTED = """defmodule Shop.Week do
  require Logger

  def warn_if_empty(orders) do
    if not (orders == []) do
      :ok
    else
      Logger.warn("empty week")
      :empty
    end
  end
end
"""


def test_the_innermost_finding_at_the_cursor_comes_first_and_is_preferred(service):
    """On `Logger.warn` inside a negated if, the lightbulb's first (and Auto Fix's) choice is the call's
    own rewrite, not the rewrite of the whole `if` around it."""
    doc = _doc(NESTED)
    at = _byte(doc, 7, 8)
    assert {f.rule_id for f in service.findings_in(doc, at, at)} == {"negated_if_else", "logger_warn"}
    for cached in (False, True):  # the statement's findings, or those of the whole-file analysis
        if cached:
            service.analyse(doc)
        rules = [a for a in service.actions(doc, at, at, None, True, False) if action_data(a).get("action") == "rule"]
        assert [action_data(a)["rule"] for a in rules] == ["logger_warn", "negated_if_else"]
        assert [a.is_preferred for a in rules] == [True, None]
    # On the `if` line only the enclosing rewrite applies; it is then the preferred one.
    at = _byte(doc, 4, 6)
    rules = [a for a in service.actions(doc, at, at, None, True, False) if action_data(a).get("action") == "rule"]
    assert [(action_data(a)["rule"], a.is_preferred) for a in rules] == [("negated_if_else", True)]


def test_rules_are_compiled_and_the_checker_started_only_while_enabled(monkeypatch):
    warmed: list[int] = []
    monkeypatch.setattr("lsp.actions.service.warm_up", lambda rules, checker: warmed.append(len(rules)))
    service = IdiomService()
    service.configure(IdiomSettings(enabled=False, elixir_path=""), None)
    service.configure(IdiomSettings(elixir_path=""), None)
    deadline = time.monotonic() + 5
    while not warmed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert warmed == [len(service.rules)]  # once: for the enabled settings only

"""'Make idiomatic' end to end: diagnostics, code actions listed and resolved, fix-all and the model
rewrite, through the real server over stdio with the real embedded model, as the client sees them."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from lsp.actions.model_rewrite import definitions
from lsp.actions.service import FIX_ALL_KIND, MODEL_TITLE
from lsp.driver import apply_text_edits, fetch_status, workspace_edits_for
from lsp.prompt import REWRITE_BEFORE, REWRITE_TASK
from lsp.syntax.parser import count_errors, make_parser
from tests.actions.test_service import NESTED
from tests.e2e.conftest import SERVER, change, open_doc, start, status

pytestmark = pytest.mark.slow

STATS = """defmodule Shop.Stats do
  # Users who logged in this month.
  def active_count(users) do
    users |> Enum.filter(& &1.active) |> Enum.count()
  end

  def big_orders(orders) do
    Enum.filter(orders, &(&1.total > 10_000)) |> Enum.count()
  end
end
"""

OPTIONS = {"completion": {"speculative": False, "prefill": False}}


@pytest_lsp.fixture(config=SERVER, scope="module")
async def client(lsp_client: LanguageClient):
    await start(lsp_client, OPTIONS)
    yield
    await lsp_client.shutdown_session()


def _open(client: LanguageClient, text: str = STATS) -> str:
    uri = f"file:///tmp/{uuid.uuid4().hex}/stats.ex"
    open_doc(client, uri, text)
    return uri


async def _diagnostics(client: LanguageClient, uri: str, count: int, timeout_s: float = 20.0):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(client.diagnostics.get(uri, [])) != count:
        assert asyncio.get_running_loop().time() < deadline, f"diagnostics: {client.diagnostics.get(uri)}"
        await asyncio.sleep(0.05)
    return client.diagnostics[uri]


async def _actions(client: LanguageClient, uri: str, line: int, character: int, end: tuple[int, int] | None = None,
                   only: list[str] | None = None) -> list[types.CodeAction]:
    start = types.Position(line, character)
    stop = types.Position(*end) if end else start
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri),
            range=types.Range(start, stop),
            context=types.CodeActionContext(diagnostics=[], only=only),
        )
    )
    return [a for a in result or [] if isinstance(a, types.CodeAction)]


async def _wait_for_model(client: LanguageClient, timeout_s: float = 120.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (await status(client))["model"] is None:
        assert asyncio.get_running_loop().time() < deadline, "model did not load"
        await asyncio.sleep(0.1)


async def test_diagnostics_mark_where_a_rewrite_applies(client: LanguageClient):
    uri = _open(client)
    diagnostics = await _diagnostics(client, uri, 3)
    codes = sorted((d.range.start.line, d.code) for d in diagnostics)
    assert codes == [(3, "enum_filter_count"), (7, "enum_filter_count"), (7, "pipe_chain_start")]
    assert {d.severity for d in diagnostics} == {types.DiagnosticSeverity.Hint}
    assert all(d.source == "devstral-elixir" for d in diagnostics)


async def test_rule_action_is_listed_without_edit_then_resolved_to_a_minimal_edit(client: LanguageClient):
    uri = _open(client)
    actions = await _actions(client, uri, 3, 20)
    rule_actions = [a for a in actions if a.title.startswith("Make idiomatic: Enum.filter")]
    assert len(rule_actions) == 1, [a.title for a in actions]
    action = rule_actions[0]
    assert action.kind == types.CodeActionKind.QuickFix
    assert action.edit is None, "edits are attached at resolve time"
    resolved = await client.code_action_resolve_async(action)
    edits = workspace_edits_for(resolved.edit, uri)
    assert len(edits) == 1 and edits[0].range.start.line == edits[0].range.end.line == 3
    new_text = apply_text_edits(STATS, edits)
    assert "users |> Enum.count(& &1.active)\n" in new_text
    assert new_text.count("Enum.filter") == 1, "only the finding under the cursor changes"
    # The comment and everything else survive.
    assert new_text.replace("users |> Enum.count(& &1.active)", "users |> Enum.filter(& &1.active) |> Enum.count()") == STATS


async def test_the_innermost_rewrite_at_the_cursor_is_listed_first_and_preferred(client: LanguageClient):
    uri = _open(client, NESTED)
    await _diagnostics(client, uri, 3)  # the whole-file analysis is now what the listing reads
    actions = await _actions(client, uri, 7, 8)
    rules = [a for a in actions if a.kind == types.CodeActionKind.QuickFix]
    assert [a.diagnostics[0].code for a in rules] == ["logger_warn", "negated_if_else"]
    assert rules[0].is_preferred and not rules[1].is_preferred
    resolved = await client.code_action_resolve_async(rules[0])
    new_text = apply_text_edits(NESTED, workspace_edits_for(resolved.edit, uri))
    assert new_text == NESTED.replace("Logger.warn(", "Logger.warning(")


async def test_fix_all_rewrites_every_safe_finding(client: LanguageClient):
    uri = _open(client)
    actions = await _actions(client, uri, 0, 0, only=[types.CodeActionKind.SourceFixAll])
    assert [a.kind for a in actions] == [FIX_ALL_KIND]
    resolved = await client.code_action_resolve_async(actions[0])
    new_text = apply_text_edits(STATS, workspace_edits_for(resolved.edit, uri))
    assert "Enum.filter" not in new_text
    assert "Enum.count(orders, &(&1.total > 10_000))" in new_text
    assert count_errors(make_parser().parse(new_text.encode()).root_node) == 0
    # Fix-all only lists when asked for source actions or when a safe finding is under the cursor.
    assert not [a for a in await _actions(client, uri, 0, 0) if a.kind == FIX_ALL_KIND]


async def test_fix_all_on_a_selection_leaves_the_rest(client: LanguageClient):
    uri = _open(client)
    actions = await _actions(client, uri, 6, 0, end=(9, 0), only=[FIX_ALL_KIND])
    resolved = await client.code_action_resolve_async(actions[0])
    new_text = apply_text_edits(STATS, workspace_edits_for(resolved.edit, uri))
    assert "users |> Enum.filter(& &1.active) |> Enum.count()" in new_text
    assert "Enum.count(orders, &(&1.total > 10_000))" in new_text


async def test_a_stale_action_is_not_applied(client: LanguageClient):
    uri = _open(client)
    action = next(a for a in await _actions(client, uri, 3, 20) if a.kind == types.CodeActionKind.QuickFix)
    change(client, uri, 2, (0, 0), (0, 0), "# edited\n")
    resolved = await client.code_action_resolve_async(action)
    assert resolved.edit is None
    assert resolved.disabled is not None and "changed" in resolved.disabled.reason


async def test_rules_can_be_switched_off_and_unknown_ids_are_reported(client: LanguageClient):
    uri = _open(client)
    await _diagnostics(client, uri, 3)
    client.messages.clear()
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            {**OPTIONS, "idioms": {"disabledRules": ["enum_filter_count", "no_such_rule"]}}
        )
    )
    remaining = await _diagnostics(client, uri, 1)
    assert remaining[0].code == "pipe_chain_start"
    assert not [a for a in await _actions(client, uri, 3, 20) if a.title.startswith("Make idiomatic:")]
    assert any("idioms.disabledRules" in m.message and "no_such_rule" in m.message for m in client.messages)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(OPTIONS))
    await _diagnostics(client, uri, 3)


async def test_model_rewrite_is_checked_before_it_is_offered(client: LanguageClient):
    await _wait_for_model(client)
    uri = _open(client)
    actions = await _actions(client, uri, 3, 10)
    model = [a for a in actions if a.title == MODEL_TITLE]
    assert len(model) == 1 and model[0].kind == types.CodeActionKind.RefactorRewrite and model[0].edit is None
    client.messages.clear()
    tokens_before = set(client.progress_reports)
    resolved = await client.code_action_resolve_async(model[0])
    # Progress was reported from begin to end.
    new_tokens = set(client.progress_reports) - tokens_before
    assert len(new_tokens) == 1
    kinds = [type(v).__name__ for v in client.progress_reports[new_tokens.pop()]]
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"
    if resolved.edit is None:
        # Rejected: the user is told why, and gets no edit.
        assert resolved.disabled is not None and resolved.disabled.reason
        assert any("Make idiomatic (model)" in m.message for m in client.messages)
    else:
        new_text = apply_text_edits(STATS, workspace_edits_for(resolved.edit, uri))
        tree = make_parser().parse(new_text.encode())
        assert count_errors(tree.root_node) == 0
        assert definitions(tree.root_node, new_text.encode()) == definitions(
            make_parser().parse(STATS.encode()).root_node, STATS.encode()
        )
    # The model saw the versioned rewrite prompt, with the rule finding as a hint.
    call = (await fetch_status(client.protocol, {"withPrompt": True}))["lastModelCall"]
    prompt = "".join(text for text, _special in call["segments"])
    assert REWRITE_TASK in prompt and "- Enum.filter |> Enum.count" in prompt
    assert "def active_count(users) do" in prompt.split(REWRITE_BEFORE)[1]


async def test_model_rewrite_can_be_cancelled(client: LanguageClient):
    await _wait_for_model(client)
    uri = _open(client)
    model = next(a for a in await _actions(client, uri, 3, 10) if a.title == MODEL_TITLE)
    msg_id = f"rewrite-{uuid.uuid4().hex}"
    # pytest-lsp's send_request_async is a coroutine: schedule it so the request leaves now.
    pending = asyncio.ensure_future(
        client.protocol.send_request_async(types.CODE_ACTION_RESOLVE, model, msg_id=msg_id)
    )
    # Cancel at once: with the prompt cached the rewrite can finish in well under a second, so a
    # delay would race it. The server reads the cancel while it awaits the client's answer to
    # window/workDoneProgress/create, which comes after the cancel on the wire.
    await asyncio.sleep(0)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
    with pytest.raises(Exception, match="cancel"):
        await pending
    # The server is still serving, and the next rewrite runs.
    assert (await status(client))["documents"] >= 1
    again = await client.code_action_resolve_async(model)
    assert again.edit is not None or again.disabled is not None


CHECKS = """defmodule Shop.Checks do
  def label(paid?) do
    case paid? do
      true -> "paid"
      false -> "open"
    end
  end

  def late?(due, now), do: DateTime.compare(now, due) == :gt
end
"""


async def test_unsafe_rules_are_offered_only_on_request_with_their_risk(client: LanguageClient):
    uri = _open(client, CHECKS)
    await asyncio.sleep(0.5)  # diagnostics are published after open
    assert "case_boolean" not in {d.code for d in client.diagnostics.get(uri, [])}
    actions = await _actions(client, uri, 2, 6)
    unsafe = [a for a in actions if "(unsafe:" in a.title]
    assert len(unsafe) == 1 and unsafe[0].kind == types.CodeActionKind.RefactorRewrite
    resolved = await client.code_action_resolve_async(unsafe[0])
    new_text = apply_text_edits(CHECKS, workspace_edits_for(resolved.edit, uri))
    assert "if paid? do" in new_text and "case" not in new_text.split("def label")[1].split("def late?")[0]
    # Unsafe rules never join fix-all.
    fix_all = await _actions(client, uri, 0, 0, only=[FIX_ALL_KIND])
    if fix_all:
        fixed = await client.code_action_resolve_async(fix_all[0])
        assert fixed.edit is None or "case paid? do" in apply_text_edits(CHECKS, workspace_edits_for(fixed.edit, uri))


async def test_rules_follow_the_projects_elixir_version(client: LanguageClient):
    uri = _open(client, CHECKS)
    line = CHECKS.split("\n").index("  def late?(due, now), do: DateTime.compare(now, due) == :gt")
    assert not [a for a in await _actions(client, uri, line, 30) if "DateTime.after?" in a.title]
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams({**OPTIONS, "idioms": {"elixirVersion": "1.17"}})
    )
    # The notification has no answer: ask until the new rule set is in place (at most 10 s on a busy machine).
    for _ in range(50):
        await asyncio.sleep(0.2)
        newer = [a for a in await _actions(client, uri, line, 30) if a.title.startswith("Make idiomatic:")]
        if any("after?" in a.title for a in newer):
            break
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(OPTIONS))
    assert any("after?" in a.title for a in newer), [a.title for a in newer]

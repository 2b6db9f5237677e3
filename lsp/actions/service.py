"""Idiom findings as LSP diagnostics and code actions; the server's handlers only call into this.

Listing is cheap: findings in the requested range are found with range-restricted queries and each is
re-parsed (tree-sitter) before it is listed. Edits are attached in `codeAction/resolve`, after the
Elixir-side check (`Code.string_to_quoted/1`), so the list appears at once and the VM is only asked
about the action the user picks. Clients that cannot resolve edits get them computed eagerly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types

from lsp.config import IdiomSettings, parse_version
from lsp.documents import Document
from lsp.idioms.base import Edit, Finding, Rule, Safety
from lsp.idioms.elixir_check import ElixirChecker
from lsp.idioms.engine import (
    UnitCache,
    apply_edits,
    check,
    checked_findings,
    enclosing_statement,
    fix_all,
    incremental_findings,
    minimal_edits,
    no_pause,
    shadowed_modules,
)
from lsp.idioms.nodes import call_parts
from lsp.idioms.registry import (
    DEFAULT_ELIXIR_VERSION,
    active_rules,
    mix_elixir_requirement,
    rule_by_id,
    unknown_rule_ids,
)
from lsp.syntax.context import MODULE_KEYWORDS
from lsp.syntax.parser import make_parser

SOURCE = "devstral-elixir"
FIX_ALL_KIND = "source.fixAll.devstralElixir"
MODEL_TITLE = "Make idiomatic (model)"


def action_title(rule: Rule) -> str:
    if rule.safety is Safety.UNSAFE:
        return f"Make idiomatic: {rule.title} (unsafe: {rule.risk})"
    return f"Make idiomatic: {rule.title}"


def action_kind(rule: Rule) -> str:
    return types.CodeActionKind.RefactorRewrite if rule.safety is Safety.UNSAFE else types.CodeActionKind.QuickFix


def _kind(kind: str) -> str:
    # lsprotocol's kinds are str-valued enums whose format() is "CodeActionKind.X", not the value.
    return str(getattr(kind, "value", kind))


def kind_requested(kind: str, only: Sequence[str] | None) -> bool:
    kind = _kind(kind)
    return not only or any(kind == _kind(w) or kind.startswith(f"{_kind(w)}.") for w in only)


def to_range(doc: Document, start: int, end: int) -> types.Range:
    a, b = doc.position_of(start), doc.position_of(end)
    return types.Range(types.Position(a.line, a.character), types.Position(b.line, b.character))


def workspace_edit(doc: Document, edits: Sequence[Edit]) -> types.WorkspaceEdit:
    """Edits for exactly the document version they were computed on."""
    text_edits: list[types.TextEdit | types.AnnotatedTextEdit | types.SnippetTextEdit] = [
        types.TextEdit(to_range(doc, e.start, e.end), e.text) for e in edits
    ]
    identifier = types.OptionalVersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version)
    return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(identifier, text_edits)])


@dataclass
class _Analysis:
    version: int
    findings: tuple[Finding, ...]
    # Per-unit findings for the next, incremental analysis; valid while the aliases stay the same.
    units: UnitCache
    shadowed: frozenset[str]
    # The rule list it ran (settings replace it): an analysis begun before a settings change must not
    # be served, nor stored, after it.
    rules: Sequence[Rule]


class IdiomService:
    def __init__(self, log: Callable[[str, str], None] | None = None) -> None:
        self.settings = IdiomSettings()
        self.rules: tuple[Rule, ...] = ()
        self.elixir_version = DEFAULT_ELIXIR_VERSION
        self.version_source = "default"
        self.checker: ElixirChecker | None = None
        self._log = log or (lambda level, message: None)
        self._analyses: dict[str, _Analysis] = {}

    # -- configuration ----------------------------------------------------------------------------------
    def configure(self, settings: IdiomSettings, root: Path | None) -> list[str]:
        """Apply settings; returns problems worth telling the user (unknown rule ids)."""
        self.settings = settings
        # Keep the running checker VM unless the executable changed: settings change more often than that.
        if self.checker is None or self.checker.requested != settings.elixir_path:
            if self.checker is not None:
                self.checker.close()
            self.checker = ElixirChecker(settings.elixir_path) if settings.elixir_path else None
        self.elixir_version, self.version_source = self._project_version(settings, root)
        self.rules = active_rules(settings, self.elixir_version)
        self._analyses.clear()
        # Compiling the rules' queries and starting the Elixir VM take about a second each; do both now,
        # off the event loop, rather than on the first code-action request (and not at all while off).
        if settings.enabled:
            threading.Thread(target=warm_up, args=(self.rules, self.checker), daemon=True).start()
        return [f"setting 'idioms.{key}': unknown rule '{r}' ignored" for key, r in unknown_rule_ids(settings)]

    def _project_version(self, settings: IdiomSettings, root: Path | None) -> tuple[tuple[int, int], str]:
        if settings.elixir_version:
            version = parse_version(settings.elixir_version)
            if version is not None:
                return version, "setting idioms.elixirVersion"
        from_mix = mix_elixir_requirement(root)
        if from_mix is not None:
            return from_mix, "mix.exs"
        installed = self.checker.version() if self.checker is not None else None
        if installed is not None:
            return installed, "installed elixir"
        return DEFAULT_ELIXIR_VERSION, "default"

    def close(self) -> None:
        if self.checker is not None:
            self.checker.close()

    def forget(self, uri: str) -> None:
        self._analyses.pop(uri, None)

    # -- findings ---------------------------------------------------------------------------------------
    def analyse(self, doc: Document, pause: Callable[[], None] = no_pause) -> tuple[Finding, ...]:
        """All checked findings of the document's current version (cached per version); `pause` is
        called between steps (see `find_findings`)."""
        rules = self.rules
        cached = self._cached(doc.uri, rules)
        if cached is not None and cached.version == doc.version:
            return cached.findings
        if not self.settings.enabled:
            return ()
        shadowed = shadowed_modules(doc.source)
        units: UnitCache = cached.units if cached is not None and cached.shadowed == shadowed else {}
        found, units = incremental_findings(rules, doc.tree, doc.source, units, pause)
        if self.rules is rules:
            self._analyses[doc.uri] = _Analysis(doc.version, tuple(found), units, shadowed, rules)
        return tuple(found)

    def _cached(self, uri: str, rules: Sequence[Rule]) -> _Analysis | None:
        """The document's last analysis, if it ran `rules` (one from before a settings change is no use)."""
        cached = self._analyses.get(uri)
        return cached if cached is not None and cached.rules is rules else None

    def findings_in(self, doc: Document, start: int, end: int) -> list[Finding]:
        """Checked findings whose range overlaps [start, end] (a cursor is an empty range)."""
        if not self.settings.enabled:
            return []
        cached = self._cached(doc.uri, self.rules)
        if cached is not None and cached.version == doc.version:
            candidates: Sequence[Finding] = cached.findings
        else:
            candidates = checked_findings(self.rules, doc.tree, doc.source, statement_range(doc, start, end))
        return [f for f in candidates if f.start <= end and start <= f.end]

    def diagnostics(self, doc: Document, pause: Callable[[], None] = no_pause) -> list[types.Diagnostic]:
        if not (self.settings.enabled and self.settings.diagnostics):
            return []
        severity = self._severity()
        diagnostics = []
        for finding in self.analyse(doc, pause):
            rule = rule_by_id(finding.rule_id)
            # Unsafe rewrites are offered on request only; flagging every occurrence would be noise.
            if rule is None or rule.safety is Safety.UNSAFE or rule.id in self.settings.quiet_rules:
                continue
            diagnostics.append(self._diagnostic(doc, finding, rule, severity))
        return diagnostics

    def _severity(self) -> types.DiagnosticSeverity:
        if self.settings.diagnostic_severity == "information":
            return types.DiagnosticSeverity.Information
        return types.DiagnosticSeverity.Hint

    @staticmethod
    def _diagnostic(doc: Document, finding: Finding, rule: Rule,
                    severity: types.DiagnosticSeverity) -> types.Diagnostic:
        message = f"Could be more idiomatic: {rule.title}"
        if rule.safety is Safety.MOSTLY_SAFE:
            message += f" (mostly safe: {rule.risk})"
        return types.Diagnostic(
            range=to_range(doc, finding.start, finding.end),
            message=message,
            severity=severity,
            code=rule.id,
            source=SOURCE,
        )

    # -- actions ----------------------------------------------------------------------------------------
    def fix_all_rules(self) -> list[Rule]:
        allowed = {Safety.SAFE, Safety.MOSTLY_SAFE} if self.settings.fix_all_mostly_safe else {Safety.SAFE}
        return [rule for rule in self.rules if rule.safety in allowed]

    def actions(
        self,
        doc: Document,
        start: int,
        end: int,
        only: Sequence[str] | None,
        resolve_edits: bool,
        model_available: bool,
    ) -> list[types.CodeAction]:
        """The action list for a cursor/selection; edits come at resolve time when the client can resolve."""
        if not self.settings.enabled:
            return []
        actions = []
        # Innermost first: on a call inside an `if`, the call's own rewrite is what the cursor points at.
        findings = sorted(self.findings_in(doc, start, end), key=lambda f: (f.end - f.start, f.start))
        for finding in findings:
            rule = rule_by_id(finding.rule_id)
            if rule is None or not kind_requested(action_kind(rule), only):
                continue
            data = {"uri": doc.uri, "version": doc.version, "action": "rule", "rule": rule.id,
                    "start": finding.start, "end": finding.end}
            action = types.CodeAction(title=action_title(rule), kind=action_kind(rule), data=data)
            if not actions and rule.safety is Safety.SAFE:
                action.is_preferred = True  # what the editor's "auto fix" applies
            if rule.safety is not Safety.UNSAFE and self.settings.diagnostics:
                # The same diagnostic as published, so editors tie the action to it.
                action.diagnostics = [self._diagnostic(doc, finding, rule, self._severity())]
            actions.append(action if resolve_edits else self.resolve(doc, action))
        safe_ids = {rule.id for rule in self.fix_all_rules()}
        if kind_requested(FIX_ALL_KIND, only) and (
            (only and any(_kind(k).startswith("source") for k in only)) or any(f.rule_id in safe_ids for f in findings)
        ):
            # A selection limits fix-all to it; a bare cursor means the whole file.
            low, high = (start, end) if end > start else (0, len(doc.source))
            data = {"uri": doc.uri, "version": doc.version, "action": "fixAll", "start": low, "end": high}
            scope = "selection" if end > start else "file"
            action = types.CodeAction(title=f"Make idiomatic: fix all safe rewrites in {scope}", kind=FIX_ALL_KIND, data=data)
            actions.append(action if resolve_edits else self.resolve(doc, action))
        if model_available and resolve_edits and self.settings.model_rewrite and kind_requested(
            types.CodeActionKind.RefactorRewrite, only
        ):
            data = {"uri": doc.uri, "version": doc.version, "action": "model", "start": start, "end": end}
            actions.append(types.CodeAction(title=MODEL_TITLE, kind=types.CodeActionKind.RefactorRewrite, data=data))
        return actions

    def resolve(self, doc: Document, action: types.CodeAction) -> types.CodeAction:
        """Attach the checked edit of a rule or fix-all action (model actions are resolved by the server)."""
        data = action_data(action)
        if data.get("version") != doc.version:
            action.disabled = types.CodeActionDisabled(reason="the document changed; ask for code actions again")
            return action
        if data.get("action") == "rule":
            edits, problem = self._rule_edits(doc, str(data.get("rule")), int(data["start"]), int(data["end"]))
        elif data.get("action") == "fixAll":
            edits, problem = self._fix_all_edits(doc, int(data["start"]), int(data["end"]))
        else:
            return action
        if problem:
            action.disabled = types.CodeActionDisabled(reason=problem)
        else:
            action.edit = workspace_edit(doc, edits)
        return action

    def _rule_edits(self, doc: Document, rule_id: str, start: int, end: int) -> tuple[list[Edit], str]:
        rule = rule_by_id(rule_id)
        if rule is None or rule not in self.rules:
            return [], f"rule '{rule_id}' is not enabled"
        finding = next(
            (f for f in rule.find(doc.tree.root_node, doc.source, byte_range=(start, end))
             if (f.start, f.end) == (start, end)),
            None,
        )
        if finding is None or not check(doc.tree, doc.source, finding, make_parser()):
            return [], "this rewrite no longer applies"
        problem = self.elixir_problem(apply_edits(doc.source, finding.edits))
        return list(finding.edits), problem

    def _fix_all_edits(self, doc: Document, start: int, end: int) -> tuple[list[Edit], str]:
        result = fix_all(self.fix_all_rules(), doc.tree, doc.source, (start, end))
        if not result.applied:
            return [], "nothing to fix"
        problem = self.elixir_problem(result.source)
        return minimal_edits(doc.source, result.source), problem

    def elixir_problem(self, new_source: bytes) -> str:
        """'' when `Code.string_to_quoted/1` accepts the text (or elixir is not installed)."""
        if self.checker is None or not self.checker.available:
            return ""
        verdict = self.checker.quoted(new_source.decode("utf-8"))
        return "" if verdict.ok else f"the rewrite is rejected by Code.string_to_quoted/1: {verdict.message}"

    def hints(self, doc: Document, start: int, end: int) -> list[str]:
        """Rule titles for the findings in a range, as guidance for the model rewrite."""
        titles = []
        for finding in checked_findings(self.rules, doc.tree, doc.source, (start, end)):
            rule = rule_by_id(finding.rule_id)
            if rule is not None and rule.title not in titles and start <= finding.start and finding.end <= end:
                titles.append(rule.title)
        return titles


def statement_range(doc: Document, start: int, end: int) -> tuple[int, int]:
    """The byte range to query for findings at a cursor/selection: the statement(s) around it.

    A query's byte range only returns matches whose nodes touch it, and a finding's node need not touch
    the cursor (in `xs |> Enum.filter(f) |> Enum.count()` the finding is the `Enum.count` call, the cursor
    may be on `filter`); an empty range matches nothing at all. Between a module's definitions the
    statement would be the whole module; the cursor's lines are enough there.
    """
    node = enclosing_statement(doc.tree.root_node, start, end)
    low, high = node.start_byte, node.end_byte
    parts = call_parts(doc.source, node) if node.type == "call" else None
    if node.parent is None or (parts is not None and parts.module is None and parts.name in MODULE_KEYWORDS):
        low, high = start, end
    first = doc.line_start_byte(doc.line_of_byte(min(start, low)))
    last_line = doc.line_of_byte(max(end, high))
    last = doc.line_start_byte(last_line + 1) if last_line + 1 < doc.line_count else len(doc.source)
    return first, max(last, first + 1)


def warm_up(rules: Sequence[Rule], checker: ElixirChecker | None) -> None:
    for rule in rules:
        _ = rule.query
    if checker is not None:
        checker.quoted("")


def action_data(action: types.CodeAction) -> dict[str, Any]:
    data = action.data
    if isinstance(data, dict):
        return data
    # pygls hands untyped JSON back as named tuples.
    return data._asdict() if hasattr(data, "_asdict") else {}

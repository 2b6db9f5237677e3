"""Running idiom rules over a document: findings, checked rewrites and fix-all to a fixed point.

Every rewrite is applied to a copy of the source and re-parsed (incrementally, from the document's tree)
before it is offered: a rewrite that adds an ERROR or MISSING node is dropped. The Elixir-side check
(`Code.string_to_quoted/1`) lives in `lsp.idioms.elixir_check` and is applied by callers that can afford it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import tree_sitter

from lsp.idioms.base import Edit, Finding, Rule
from lsp.idioms.nodes import call_parts
from lsp.syntax.context import MODULE_KEYWORDS
from lsp.syntax.parser import count_errors, make_parser

# Fix-all re-runs the rules on its own output until nothing changes; this bounds pathological ping-pong.
MAX_FIX_ALL_PASSES = 10


def _point(source: bytes, byte: int) -> tuple[int, int]:
    row = source.count(b"\n", 0, byte)
    return row, byte - (source.rfind(b"\n", 0, byte) + 1)


@lru_cache(maxsize=16)
def shadowed_modules(source: bytes) -> frozenset[str]:
    """Short names re-bound by `alias X.Enum` or `alias X, as: Enum` anywhere in the document.

    Tree-sitter has no name resolution; a rule about `Enum.map` must not fire where `Enum` is the user's.
    Cached per source text: listing actions asks for it on every cursor move.
    """
    names: set[str] = set()
    for line in source.split(b"\n"):
        stripped = line.strip()
        if not stripped.startswith(b"alias "):
            continue
        body = stripped[6:].decode("utf-8", "replace")
        if "as:" in body:
            names.add(body.split("as:", 1)[1].strip().split()[0].strip(",)"))
        elif "{" not in body:
            names.add(body.split(",")[0].strip().rsplit(".", 1)[-1])
        else:
            inner = body[body.find("{") + 1 : body.rfind("}")]
            names.update(part.strip().rsplit(".", 1)[-1] for part in inner.split(",") if part.strip())
    return frozenset(names)


def no_pause() -> None:
    pass


def find_findings(
    rules: Iterable[Rule],
    tree: tree_sitter.Tree,
    source: bytes,
    byte_range: tuple[int, int] | None = None,
    pause: Callable[[], None] = no_pause,
) -> list[Finding]:
    """Every finding of `rules`, in rule order then source order (unchecked: see `check`).

    `pause` is called between steps: background callers block there while a completion generates."""
    shadowed = shadowed_modules(source)
    findings: list[Finding] = []
    for rule in rules:
        pause()
        findings.extend(rule.find(tree.root_node, source, shadowed, byte_range))
    return findings


def apply_edits(source: bytes, edits: Sequence[Edit]) -> bytes:
    """Apply non-overlapping edits (in any order)."""
    out = source
    last_start = len(source) + 1
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        if edit.end > last_start:
            raise ValueError(f"overlapping edits at byte {edit.start}")
        out = out[: edit.start] + edit.text.encode("utf-8") + out[edit.end :]
        last_start = edit.start
    return out


def reparse(tree: tree_sitter.Tree, source: bytes, edits: Sequence[Edit],
            parser: tree_sitter.Parser | None = None) -> tuple[bytes, tree_sitter.Tree]:
    """The edited source and its tree, re-parsed incrementally from a copy of `tree`."""
    parser = parser or make_parser()
    new_tree = tree.copy()
    new_source = source
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        new_bytes = edit.text.encode("utf-8")
        start_point = _point(new_source, edit.start)
        old_end_point = _point(new_source, edit.end)
        new_source = new_source[: edit.start] + new_bytes + new_source[edit.end :]
        new_tree.edit(
            start_byte=edit.start,
            old_end_byte=edit.end,
            new_end_byte=edit.start + len(new_bytes),
            start_point=start_point,
            old_end_point=old_end_point,
            new_end_point=_point(new_source, edit.start + len(new_bytes)),
        )
    return new_source, parser.parse(new_source, new_tree)


def parses_no_worse(tree: tree_sitter.Tree, new_tree: tree_sitter.Tree) -> bool:
    """No new ERROR/MISSING node: the edited document has at most as many as before."""
    return count_errors(new_tree.root_node) <= count_errors(tree.root_node)


# Node types whose children are statements (complete expressions that parse on their own).
STATEMENT_PARENTS = frozenset(
    {"source", "do_block", "else_block", "rescue_block", "catch_block", "after_block", "body"}
)


def enclosing_statement(root: tree_sitter.Node, start: int, end: int) -> tree_sitter.Node:
    """The smallest statement (a child of a block or of the file) covering [start, end)."""
    node = root.descendant_for_byte_range(start, max(start, end - 1)) or root
    while node.parent is not None and node.parent.type not in STATEMENT_PARENTS:
        node = node.parent
    return node


def check(tree: tree_sitter.Tree, source: bytes, finding: Finding,
          parser: tree_sitter.Parser | None = None) -> bool:
    """The rewrite adds no ERROR/MISSING node.

    Only the statement around the edits is re-parsed, on its own: a statement is a complete
    expression, so this is as strict as re-parsing the document and costs a fraction of it.
    """
    parser = parser or make_parser()
    statement = enclosing_statement(tree.root_node, *finding.edit_span)
    if statement.parent is None:
        _new_source, new_tree = reparse(tree, source, finding.edits, parser)
        return parses_no_worse(tree, new_tree)
    base = statement.start_byte
    old = source[base : statement.end_byte]
    new = apply_edits(old, [Edit(e.start - base, e.end - base, e.text) for e in finding.edits])
    return count_errors(parser.parse(new).root_node) <= count_errors(parser.parse(old).root_node)


def checked_findings(
    rules: Iterable[Rule],
    tree: tree_sitter.Tree,
    source: bytes,
    byte_range: tuple[int, int] | None = None,
    pause: Callable[[], None] = no_pause,
) -> list[Finding]:
    parser = make_parser()
    checked = []
    for finding in find_findings(rules, tree, source, byte_range, pause):
        pause()
        if check(tree, source, finding, parser):
            checked.append(finding)
    return checked


def disjoint(findings: Sequence[Finding]) -> list[Finding]:
    """A maximal prefix-greedy set of findings whose edit spans do not overlap."""
    chosen: list[Finding] = []
    spans: list[tuple[int, int]] = []
    for finding in findings:
        start, end = finding.edit_span
        # Closed intervals: an insertion at the edge of another edit's span counts as a clash (fix-all
        # takes it on the next pass, after a re-parse).
        if any(start <= e and s <= end for s, e in spans):
            continue
        chosen.append(finding)
        spans.append((start, end))
    return chosen


@dataclass(frozen=True)
class FixAllResult:
    source: bytes
    applied: tuple[str, ...]  # rule ids, one per applied finding, in order
    passes: int


def fix_all(rules: Sequence[Rule], tree: tree_sitter.Tree, source: bytes,
            byte_range: tuple[int, int] | None = None) -> FixAllResult:
    """Apply the findings of `rules` (within `byte_range`) until none is left.

    Each pass takes a disjoint set of findings; one that would make the parse worse is skipped. The range
    follows the edits, so a selection keeps covering the same code.
    """
    parser = make_parser()
    applied: list[str] = []
    passes = 0
    low, high = byte_range if byte_range is not None else (0, len(source))
    while passes < MAX_FIX_ALL_PASSES:
        findings = [f for f in find_findings(rules, tree, source, (low, high)) if low <= f.start and f.end <= high]
        accepted = []
        for finding in disjoint(findings):
            if check(tree, source, finding, parser):
                accepted.append(finding)
        if not accepted:
            break
        passes += 1
        edits = [edit for finding in accepted for edit in finding.edits]
        new_source, new_tree = reparse(tree, source, edits, parser)
        if not parses_no_worse(tree, new_tree):
            # Individually fine, jointly not (rare): keep only the first.
            accepted = accepted[:1]
            edits = list(accepted[0].edits)
            new_source, new_tree = reparse(tree, source, edits, parser)
        high += sum(len(e.text.encode("utf-8")) - (e.end - e.start) for e in edits)
        applied.extend(f.rule_id for f in accepted)
        source, tree = new_source, new_tree
    return FixAllResult(source, tuple(applied), passes)


def minimal_edits(old: bytes, new: bytes) -> list[Edit]:
    """Line-level hunks turning `old` into `new`, as byte-range edits on `old` (never a whole-file replace)."""
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    offsets = [0]
    for line in old_lines:
        offsets.append(offsets[-1] + len(line))
    edits = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        edits.append(Edit(offsets[i1], offsets[i2], b"".join(new_lines[j1:j2]).decode("utf-8")))
    return edits



# -- incremental analysis -------------------------------------------------------------------------------
# Whole-file diagnostics re-run after every pause in typing; on a large file most of it has not changed.
# The file is cut into units (each definition; each run of directives/attributes; a module's head line),
# and a unit whose bytes are unchanged keeps its findings, shifted to where it now stands.

DIRECTIVE_KEYWORDS = frozenset({"alias", "import", "require", "use"})
UnitCache = dict[bytes, tuple[Finding, ...]]


def _keyword(source: bytes, node: tree_sitter.Node) -> str | None:
    parts = call_parts(source, node) if node.type == "call" else None
    return parts.name if parts is not None and parts.module is None else None


def _is_directive_like(source: bytes, node: tree_sitter.Node) -> bool:
    # Directives, attributes and comments group together: a rule like alias sorting spans a run of them.
    return node.type in ("comment", "unary_operator") or _keyword(source, node) in DIRECTIVE_KEYWORDS


def analysis_units(root: tree_sitter.Node, source: bytes) -> list[tuple[int, int]]:
    units: list[tuple[int, int]] = []

    def visit(children: list[tree_sitter.Node]) -> None:
        group: tuple[int, int] | None = None
        for child in children:
            do_block = next((c for c in child.named_children if c.type == "do_block"), None)
            if _keyword(source, child) in MODULE_KEYWORDS and do_block is not None:
                if group:
                    units.append(group)
                    group = None
                body = [c for c in do_block.named_children if not c.type.endswith("_block")]
                units.append((child.start_byte, body[0].start_byte if body else child.end_byte))
                visit(body)
                if body:
                    units.append((body[-1].end_byte, child.end_byte))
            elif _is_directive_like(source, child):
                group = (group[0] if group else child.start_byte, child.end_byte)
            else:
                if group:
                    units.append(group)
                    group = None
                units.append((child.start_byte, child.end_byte))
        if group:
            units.append(group)

    visit(root.named_children)
    return units


def _shift(finding: Finding, delta: int) -> Finding:
    edits = tuple(Edit(e.start + delta, e.end + delta, e.text) for e in finding.edits)
    return Finding(finding.rule_id, finding.start + delta, finding.end + delta, edits)


def incremental_findings(
    rules: Sequence[Rule], tree: tree_sitter.Tree, source: bytes, previous: UnitCache,
    pause: Callable[[], None] = no_pause,
) -> tuple[list[Finding], UnitCache]:
    """Every checked finding, re-running the rules only on units whose text changed.

    Returns the findings in source order and the cache for the next call. The caller drops the cache
    when the rules or the document's aliases change (both change every unit's findings).
    """
    units = analysis_units(tree.root_node, source)
    changed = [(a, b) for a, b in units if source[a:b] not in previous]
    if len(changed) * 2 > len(units):
        fresh = checked_findings(rules, tree, source, pause=pause)
    else:
        parser = make_parser()
        fresh = []
        for a, b in changed:
            for f in find_findings(rules, tree, source, (a, b), pause):
                pause()
                if a <= f.start < b and check(tree, source, f, parser):
                    fresh.append(f)
    cache: UnitCache = {}
    findings: list[Finding] = []
    for a, b in units:
        key = source[a:b]
        if key in previous and (a, b) not in changed:
            relative = previous[key]
        else:
            relative = tuple(_shift(f, -a) for f in fresh if a <= f.start < b)
        cache[key] = relative
        findings.extend(_shift(f, a) for f in relative)
    return sorted(findings, key=lambda f: (f.start, f.end, f.rule_id)), cache

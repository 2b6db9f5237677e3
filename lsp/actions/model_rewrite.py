"""'Make idiomatic (model)': target, prompt, answer extraction and the checks an answer must pass.

The model's answer is only offered when it parses (tree-sitter, and `Code.string_to_quoted/1` where
`elixir` is installed), compiles where the original compiled, keeps every function's name and arity,
keeps its string/atom literals and the modules it calls (unless the rules themselves would drop them),
and leaves no more rule findings than before. Everything here is pure; the server runs the model.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import tree_sitter

from lsp.idioms.base import Edit, Rule
from lsp.idioms.elixir_check import ElixirChecker
from lsp.idioms.engine import checked_findings, fix_all, minimal_edits
from lsp.idioms.nodes import DEF_KEYWORDS, call_parts, definition_signature, indentation, line_start
from lsp.prompt import REWRITE_AFTER, REWRITE_BEFORE, REWRITE_END, Prompt, RewriteInput, render_rewrite_prompt
from lsp.syntax.context import extract_context
from lsp.syntax.parser import count_errors, make_parser

# Lines that end an answer: the end marker, or the model starting another prompt section.
ANSWER_ENDS = (REWRITE_END, REWRITE_BEFORE, REWRITE_AFTER, "# File:", "# Task:")


@dataclass(frozen=True)
class RewriteTarget:
    start: int  # byte offset of the first line's start
    end: int  # byte offset just past the last line's newline (or the end of the source)
    code: str
    indent: str
    label: str  # "total/1" or "selection"


def _definition_at(root: tree_sitter.Node, source: bytes, byte: int) -> tree_sitter.Node | None:
    node = root.descendant_for_byte_range(byte, byte)
    while node is not None:
        if node.type == "call":
            parts = call_parts(source, node)
            if parts is not None and parts.module is None and parts.name in DEF_KEYWORDS:
                return node
        node = node.parent
    return None


def _full_lines(source: bytes, start: int, end: int) -> tuple[int, int]:
    first = line_start(source, start)
    newline = source.find(b"\n", max(end - 1, start))
    return first, (len(source) if newline == -1 else newline + 1)


def find_target(tree: tree_sitter.Tree, source: bytes, start: int, end: int) -> RewriteTarget | None:
    """The selection (whole lines) when there is one, else the function around the cursor."""
    if end > start and source[start:end].strip():
        label = "selection"
    else:
        definition = _definition_at(tree.root_node, source, start)
        if definition is None:
            return None
        signatures = definitions(definition, source)
        label = ", ".join(f"{name}/{arity}" for name, arity in signatures) or "function"
        start, end = definition.start_byte, definition.end_byte
    first, last = _full_lines(source, start, end)
    code = source[first:last].decode("utf-8")
    return RewriteTarget(first, last, code, indentation(source, first), label)


def definitions(root: tree_sitter.Node, source: bytes) -> list[tuple[str, int]]:
    """(name, arity) of every def/defp/defmacro/defmacrop under `root`, in source order."""
    found: list[tuple[str, int]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "call":
            signature = definition_signature(source, node)
            if signature is not None:
                found.append(signature)
        stack.extend(reversed(node.named_children))
    return found


def context_lines(tree: tree_sitter.Tree, source: bytes, target: RewriteTarget) -> tuple[str, ...]:
    """The module and its directives, and the function's @doc/@spec: what the code alone does not say."""
    # A byte inside the first line, so the function itself counts as enclosing.
    ctx = extract_context(tree, source, target.start + len(target.indent.encode()) + 1)
    lines: list[str] = []
    for module in ctx.modules:
        lines.append(f"defmodule {module.name} do")
        lines.extend(" ".join(directive.split()) for directive in module.directives)
    if ctx.function is not None:
        for attribute in (ctx.function.doc, ctx.function.spec):
            if attribute:
                lines.extend(line.strip() for line in attribute.splitlines())
    return tuple(lines)


def build_prompt(tree: tree_sitter.Tree, source: bytes, target: RewriteTarget, path: str,
                 hints: Sequence[str]) -> Prompt:
    code = textwrap.dedent(target.code)
    return render_rewrite_prompt(RewriteInput(path, code, context_lines(tree, source, target), tuple(hints)))


def _ends_answer(line: str, col0_comments_end: bool) -> bool:
    stripped = line.rstrip()
    return stripped in ANSWER_ENDS or (col0_comments_end and stripped.startswith("#"))


def answer_complete(generated: str, col0_comments_end: bool = True) -> bool:
    """Stop generating once the model closes its answer (or starts commenting at column 0)."""
    lines = generated.split("\n")
    return any(_ends_answer(line, col0_comments_end) for line in lines[1:-1]) or (
        len(lines) > 1 and lines[-1].rstrip() in ANSWER_ENDS
    )


def extract_answer(generated: str, col0_comments_end: bool = True) -> str:
    """The code part of the model's answer, without trailing blank lines.

    The answer ends at the end marker; when the original code has no comment at column 0 (a function
    body's comments are indented), a column-0 comment also ends it: small models drift into commentary.
    """
    kept: list[str] = []
    for line in generated.split("\n"):
        if _ends_answer(line, col0_comments_end and bool(kept)):
            break
        kept.append(line.rstrip())
    while kept and not kept[-1].strip():
        kept.pop()
    while kept and not kept[0].strip():
        kept.pop(0)
    return "\n".join(kept) + "\n" if kept else ""


def has_col0_comment(code: str) -> bool:
    return any(line.startswith("#") for line in textwrap.dedent(code).split("\n"))


# Node types whose text a rewrite must keep. Small models "simplify" by deleting code; a rewrite that
# drops a string, an atom or every call to some module no longer does what the code did.
ESSENTIAL_TYPES = frozenset({"string", "atom", "quoted_atom", "charlist", "sigil"})


def essentials(root: tree_sitter.Node, source: bytes, start: int, end: int) -> set[str]:
    """Literal strings/atoms/sigils and the modules called, within [start, end)."""
    found: set[str] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node.end_byte <= start or node.start_byte >= end:
            continue
        if node.type in ESSENTIAL_TYPES:
            found.add(source[node.start_byte : node.end_byte].decode("utf-8"))
            continue
        if node.type == "call":
            parts = call_parts(source, node)
            if parts is not None and parts.module is not None:
                found.add(parts.module)
        stack.extend(node.named_children)
    return found


def dropped_essentials(tree: tree_sitter.Tree, source: bytes, target: RewriteTarget, new_tree: tree_sitter.Tree,
                       new_source: bytes, new_end: int, rules: Sequence[Rule]) -> list[str]:
    """What the rewrite loses that the rules themselves would not (`:gt` in `compare(a, b) == :gt` may go)."""
    old = essentials(tree.root_node, source, target.start, target.end)
    new = essentials(new_tree.root_node, new_source, target.start, new_end)
    reference = fix_all(rules, tree, source, (target.start, target.end))
    ref_end = target.end + len(reference.source) - len(source)
    ref_tree = make_parser().parse(reference.source)
    allowed = old - essentials(ref_tree.root_node, reference.source, target.start, ref_end)
    return sorted(old - new - allowed)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str
    edits: tuple[Edit, ...] = ()


def _first_error_line(tree: tree_sitter.Tree) -> int:
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            return node.start_point[0] + 1
        stack.extend(reversed([c for c in node.children if c.has_error or c.is_missing]))
    return 0


def judge(
    tree: tree_sitter.Tree,
    source: bytes,
    target: RewriteTarget,
    answer: str,
    rules: Sequence[Rule],
    checker: ElixirChecker | None,
) -> Verdict:
    """Accept the model's answer as minimal edits, or say why not."""
    if not answer.strip():
        return Verdict(False, "the model returned no code")
    indented = textwrap.indent(answer, target.indent, lambda line: bool(line.strip()))
    if not target.code.endswith("\n"):
        indented = indented.rstrip("\n")
    if indented == target.code:
        return Verdict(False, "the model found nothing to change")
    new_source = source[: target.start] + indented.encode("utf-8") + source[target.end :]
    new_tree = make_parser().parse(new_source)
    if count_errors(new_tree.root_node) > count_errors(tree.root_node):
        return Verdict(False, f"the model's rewrite does not parse (line {_first_error_line(new_tree)})")
    if checker is not None and checker.available:
        new_text = new_source.decode("utf-8")
        quoted = checker.quoted(new_text)
        if not quoted.ok:
            return Verdict(False, f"the model's rewrite is not valid Elixir: {quoted.message}")
        old_text = source.decode("utf-8")
        if checker.compiles(old_text).ok:
            compiled = checker.compiles(new_text)
            if not compiled.ok:
                return Verdict(False, f"the model's rewrite does not compile: {compiled.message}")
    old_defs = Counter(definitions(tree.root_node, source))
    new_defs = Counter(definitions(new_tree.root_node, new_source))
    if old_defs != new_defs:
        lost = ", ".join(f"{n}/{a}" for n, a in sorted((old_defs - new_defs).elements()))
        added = ", ".join(f"{n}/{a}" for n, a in sorted((new_defs - old_defs).elements()))
        detail = "; ".join(part for part in (f"lost {lost}" if lost else "", f"added {added}" if added else "") if part)
        return Verdict(False, f"the model's rewrite changes function names or arities ({detail})")
    new_end = target.start + len(indented.encode("utf-8"))
    dropped = dropped_essentials(tree, source, target, new_tree, new_source, new_end, rules)
    if dropped:
        return Verdict(False, f"the model's rewrite drops {', '.join(dropped)}")
    before = len(checked_findings(rules, tree, source, (target.start, target.end)))
    after = len(checked_findings(rules, new_tree, new_source, (target.start, new_end)))
    if after > before:
        return Verdict(False, f"the model's rewrite is less idiomatic ({after} rule findings, {before} before)")
    return Verdict(True, "", tuple(minimal_edits(source, new_source)))

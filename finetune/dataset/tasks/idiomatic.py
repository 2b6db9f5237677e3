"""Stage 2 "make idiomatic" pairs, rendered with the rewrite prompt the server sends.

Two kinds of pairs, both checked by the rule engine itself:
- forward: real code that the safe idiom rules change. The original function is the "before", the
  fix-all result the "after".
- inverse: real code that is already idiomatic, made less idiomatic by one of the inverse transforms
  below (e.g. `Enum.map_join(x, ", ", f)` → `Enum.map(x, f) |> Enum.join(", ")`). A pair is kept only when
  fix-all turns the made-up "before" back into exactly the original, so the rules vouch for every pair.
The prompt (path, context lines, hints) comes from the server's own target and context code.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import tree_sitter

from finetune.dataset.tasks.common import (
    decode,
    definitions,
    make_sample,
    parse,
    parsed_elixir,
    record_path,
)
from finetune.records import Record
from lsp.actions.model_rewrite import context_lines, find_target
from lsp.config import IdiomSettings
from lsp.idioms.base import Edit, Rule, Safety
from lsp.idioms.engine import apply_edits, checked_findings, fix_all
from lsp.idioms.nodes import ATOMIC_TYPES, call_parts, is_pipe, keyword_pairs, operator, text
from lsp.idioms.registry import DEFAULT_ELIXIR_VERSION, active_rules, rule_by_id
from lsp.prompt import RewriteInput, render_rewrite_example
from lsp.syntax.parser import descendants

Node = tree_sitter.Node
# Operators looser than any comparison or pipe: an inverse that yields a pipe or comparison may stand there.
_LOOSE_OPERATORS = frozenset({"=", "&&", "||", "and", "or", "when", "<-", "->"})
_STANDALONE_PARENTS = frozenset(
    {"arguments", "do_block", "else_block", "body", "source", "pair", "list", "tuple", "stab_clause"}
)


def server_rules() -> tuple[Rule, ...]:
    """The rules the server runs with default settings (hints), and the safe ones fix-all applies."""
    return active_rules(IdiomSettings(), DEFAULT_ELIXIR_VERSION)


def fix_all_rules() -> tuple[Rule, ...]:
    return tuple(rule for rule in server_rules() if rule.safety is Safety.SAFE)


def hints_for(tree: tree_sitter.Tree, source: bytes, start: int, end: int) -> tuple[str, ...]:
    """Titles of the findings inside [start, end): what the server passes as hints."""
    titles: list[str] = []
    for finding in checked_findings(server_rules(), tree, source, (start, end)):
        rule = rule_by_id(finding.rule_id)
        if rule is not None and rule.title not in titles and start <= finding.start and finding.end <= end:
            titles.append(rule.title)
    return tuple(titles)


# -- inverse transforms -------------------------------------------------------------------------------------
# Each takes a node and returns the edit that makes it less idiomatic, or None where it does not apply.
Inverse = Callable[[bytes, Node], Edit | None]


def _piped(node: Node) -> bool:
    """The node is the right-hand step of a pipe (its first argument comes from the left)."""
    return is_pipe(node.parent) and node.parent.child_by_field_name("right") == node


def _standalone(node: Node) -> bool:
    """A pipe or comparison may replace the node without parentheses."""
    parent = node.parent
    if parent is None or parent.type in _STANDALONE_PARENTS:
        return True
    return parent.type == "binary_operator" and operator(parent) in _LOOSE_OPERATORS


def _remote(source: bytes, node: Node, module: str, name: str) -> tuple[Node, ...] | None:
    parts = call_parts(source, node) if node.type == "call" else None
    if parts is None or parts.module != module or parts.name != name or not parts.parens:
        return None
    if parts.keywords is not None or parts.do_block is not None:
        return None
    return parts.args


def _replace(node: Node, new: str) -> Edit:
    return Edit(node.start_byte, node.end_byte, new)


def unfuse_map_join(source: bytes, node: Node) -> Edit | None:
    """`Enum.map_join(x, s, f)` → `Enum.map(x, f) |> Enum.join(s)` (piped: `Enum.map(f) |> Enum.join(s)`)."""
    args = _remote(source, node, "Enum", "map_join")
    if args is None:
        return None
    t = [text(source, arg) for arg in args]
    if _piped(node):
        joiner, mapper = (t[0], t[1]) if len(t) == 2 else ("", t[0]) if len(t) == 1 else (None, None)
        return None if mapper is None else _replace(node, f"Enum.map({mapper}) |> Enum.join({joiner})")
    if not _standalone(node) or len(t) not in (2, 3):
        return None
    enumerable, joiner, mapper = (t[0], t[1], t[2]) if len(t) == 3 else (t[0], "", t[1])
    return _replace(node, f"Enum.map({enumerable}, {mapper}) |> Enum.join({joiner})")


def unfuse_filter_count(source: bytes, node: Node) -> Edit | None:
    """`Enum.count(x, f)` → `Enum.filter(x, f) |> Enum.count()`."""
    args = _remote(source, node, "Enum", "count")
    if args is None:
        return None
    t = [text(source, arg) for arg in args]
    if _piped(node):
        return _replace(node, f"Enum.filter({t[0]}) |> Enum.count()") if len(t) == 1 else None
    if len(t) != 2 or not _standalone(node):
        return None
    return _replace(node, f"Enum.filter({t[0]}, {t[1]}) |> Enum.count()")


def count_instead_of_empty(source: bytes, node: Node) -> Edit | None:
    """`Enum.empty?(x)` → `Enum.count(x) == 0`; `not Enum.empty?(x)` → `Enum.count(x) > 0`."""
    if node.type == "unary_operator" and operator(node) == "not":
        inner = node.child_by_field_name("operand")
        args = _remote(source, inner, "Enum", "empty?") if inner is not None else None
        if args is None or len(args) != 1 or not _standalone(node):
            return None
        return _replace(node, f"Enum.count({text(source, args[0])}) > 0")
    args = _remote(source, node, "Enum", "empty?")
    if args is None or len(args) != 1 or _piped(node) or not _standalone(node):
        return None
    if node.parent is not None and node.parent.type == "unary_operator":
        return None
    return _replace(node, f"Enum.count({text(source, args[0])}) == 0")


def negate_equality(source: bytes, node: Node) -> Edit | None:
    """`a != b` → `!(a == b)` (and `!==` → `!(a === b)`)."""
    if node.type != "binary_operator" or operator(node) not in ("!=", "!=="):
        return None
    if not _standalone(node):
        return None
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    positive = "==" if operator(node) == "!=" else "==="
    return _replace(node, f"!({text(source, left)} {positive} {text(source, right)})")


def into_instead_of_constructor(source: bytes, node: Node) -> Edit | None:
    """`Map.new(x)` → `Enum.into(x, %{})`, `MapSet.new(x)` → `Enum.into(x, MapSet.new())`,
    `Enum.to_list(x)` → `Enum.into(x, [])`."""
    parts = call_parts(source, node) if node.type == "call" else None
    if parts is None or not parts.parens or parts.keywords is not None or parts.do_block is not None:
        return None
    collectable = {("Map", "new"): "%{}", ("MapSet", "new"): "MapSet.new()", ("Enum", "to_list"): "[]"}
    empty = collectable.get((parts.module or "", parts.name))
    expected = 0 if _piped(node) else 1
    if empty is None or len(parts.args) != expected:
        return None
    args = [text(source, arg) for arg in parts.args]
    return _replace(node, f"Enum.into({', '.join([*args, empty])})")


def explicit_else_nil(source: bytes, node: Node) -> Edit | None:
    """`if c, do: x` → `if c, do: x, else: nil`."""
    parts = call_parts(source, node) if node.type == "call" else None
    if parts is None or parts.module is not None or parts.name != "if" or parts.do_block is not None:
        return None
    pairs = keyword_pairs(source, parts.keywords)
    if [key for key, _pair, _value in pairs] != ["do"]:
        return None
    return Edit(parts.keywords.end_byte, parts.keywords.end_byte, ", else: nil")


def _negated(source: bytes, condition: Node) -> str:
    body = text(source, condition)
    parts = call_parts(source, condition) if condition.type == "call" else None
    simple = parts.parens if parts is not None else condition.type in ATOMIC_TYPES and condition.type != "call"
    return f"!{body}" if simple else f"!({body})"


def unless_not(source: bytes, node: Node) -> Edit | None:
    """`if c, do: x` / `if c do ... end` without an else → `unless !c ...`."""
    parts = call_parts(source, node) if node.type == "call" else None
    if parts is None or parts.module is not None or parts.name != "if" or len(parts.args) != 1:
        return None
    if parts.do_block is not None:
        if any(child.type == "else_block" for child in parts.do_block.named_children):
            return None
    elif [key for key, _pair, _value in keyword_pairs(source, parts.keywords)] != ["do"]:
        return None
    condition = parts.args[0]
    target = node.child_by_field_name("target")
    between = source[target.end_byte : condition.start_byte].decode("utf-8")
    return Edit(node.start_byte, condition.end_byte, f"unless{between}{_negated(source, condition)}")


INVERSES: dict[str, Inverse] = {
    "enum_map_join": unfuse_map_join,
    "enum_filter_count": unfuse_filter_count,
    "enum_count_zero": count_instead_of_empty,
    "negated_equality": negate_equality,
    "enum_into_empty": into_instead_of_constructor,
    "if_else_nil": explicit_else_nil,
    "unless_negated": unless_not,
}


# -- pairs --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewritePair:
    origin: str  # "forward" | "inverse:<rule id>"
    path: str
    before_source: bytes  # the whole file holding the less idiomatic function
    function_start: int  # byte offset of the definition in `before_source`
    after_code: str  # the idiomatic function, full lines, original indentation
    rules: tuple[str, ...]  # the rules fix-all applied to go from before to after


def round_trips(before_source: bytes, start: int, end: int, expected: bytes) -> tuple[str, ...] | None:
    """The rules fix-all applied, when it maps `before_source` (range start..end) exactly onto `expected`."""
    tree = parse(before_source)
    result = fix_all(fix_all_rules(), tree, before_source, (start, end))
    return result.applied if result.source == expected and result.applied else None


def forward_pairs(path: str, source: bytes, tree: tree_sitter.Tree) -> Iterator[RewritePair]:
    rules = fix_all_rules()
    for definition in definitions(tree, source):
        result = fix_all(rules, tree, source, (definition.start, definition.end))
        if not result.applied:
            continue
        delta = len(result.source) - len(source)
        after = decode(result.source, definition.start, definition.end + delta)
        yield RewritePair("forward", path, source, definition.node.start_byte, after, result.applied)


def inverse_pairs(
    path: str, source: bytes, tree: tree_sitter.Tree, inverses: dict[str, Inverse] | None = None
) -> Iterator[RewritePair]:
    inverses = INVERSES if inverses is None else inverses
    rules = fix_all_rules()
    for definition in definitions(tree, source):
        if fix_all(rules, tree, source, (definition.start, definition.end)).applied:
            continue  # not idiomatic yet: its forward pair covers it
        original = decode(source, definition.start, definition.end)
        for node in descendants(definition.node):
            for rule_id, inverse in inverses.items():
                edit = inverse(source, node)
                if edit is None:
                    continue
                before_source = apply_edits(source, [edit])
                delta = len(before_source) - len(source)
                applied = round_trips(before_source, definition.start, definition.end + delta, source)
                if applied is None:
                    continue
                yield RewritePair(f"inverse:{rule_id}", path, before_source, definition.node.start_byte,
                                  original, applied)


def render_pair(pair: RewritePair) -> tuple[str, str]:
    """(prompt, completion) exactly as the server would prompt for the "before" function."""
    tree = parse(pair.before_source)
    target = find_target(tree, pair.before_source, pair.function_start, pair.function_start)
    if target is None:
        raise ValueError(f"no function at byte {pair.function_start} of {pair.path}")
    hints = hints_for(tree, pair.before_source, target.start, target.end)
    inp = RewriteInput(pair.path, textwrap.dedent(target.code), context_lines(tree, pair.before_source, target), hints)
    prompt, completion = render_rewrite_example(inp, textwrap.dedent(pair.after_code))
    return prompt.text, completion


def idiomatic_samples(
    record: Record, inverses: dict[str, Inverse] | None = None, max_inverse_per_file: int = 4
) -> Iterator[dict[str, Any]]:
    parsed = parsed_elixir(record)
    if parsed is None:
        return
    source, tree = parsed
    path = record_path(record)
    pairs: list[RewritePair] = list(forward_pairs(path, source, tree))
    for count, pair in enumerate(inverse_pairs(path, source, tree, inverses)):
        if count >= max_inverse_per_file:
            break
        pairs.append(pair)
    for pair in pairs:
        prompt, completion = render_pair(pair)
        meta = {"origin": pair.origin, "rules": list(pair.rules)}
        yield make_sample(2, "make_idiomatic", record.provenance, prompt=prompt, completion=completion, meta=meta)


def inverse_names() -> Sequence[str]:
    return tuple(INVERSES)

"""Helpers shared by the Enum fusion and emptiness rules.

Empty collectables (`%{}`, `[]`, `MapSet.new()`), Elixir operator precedence for placing a rewritten
expression without changing how it binds, and `apply_function`: the text of a function argument
(`&valid?/1`, `&(&1 > 2)`, `fn v -> v.ok end`, a variable) applied to an expression, so that two
steps can be composed into one function.
"""

from __future__ import annotations

from dataclasses import dataclass

from lsp.idioms.base import Edit, Match
from lsp.idioms.fusion import FusedPair, fused_pair
from lsp.idioms.nodes import (
    ATOMIC_TYPES,
    Node,
    call_parts,
    indentation,
    is_pipe,
    operator,
    text,
    unwrap_parens,
)
from lsp.syntax.parser import descendants

# Binding strength of Elixir's binary operators (higher binds tighter); from the Elixir operator table.
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("<-", "\\\\"),
    ("when",),
    ("::",),
    ("|",),
    ("=>",),
    ("=",),
    ("||", "|||", "or"),
    ("&&", "&&&", "and"),
    ("==", "!=", "=~", "===", "!=="),
    ("<", ">", "<=", ">="),
    ("|>", "<<<", ">>>", "<<~", "~>>", "<~", "~>", "<~>", "<|>"),
    ("in", "not in"),
    ("^^^",),
    ("++", "--", "+++", "---", "..", "<>", "//"),
    ("+", "-"),
    ("*", "/"),
    ("**",),
)
PRECEDENCE: dict[str, int] = {op: level + 1 for level, ops in enumerate(_LEVELS) for op in ops}
RIGHT_ASSOCIATIVE = frozenset({"<-", "\\\\", "when", "::", "|", "=>", "=", "++", "--", "+++", "---", "..", "<>", "**"})
UNARY = 50  # `not x`, `!x`, `-x`: binds tighter than every binary operator
ATOM = 100  # a call, variable or literal: never needs parentheses
LOOSEST = 0  # paren-less calls, captures, anything unknown: always parenthesised

# Longest line `mix format` leaves alone.
LINE_LENGTH = 98


@dataclass(frozen=True)
class Expr:
    """Expression text plus how tightly it binds, so it can be placed as an operand."""

    text: str
    precedence: int
    operator: str | None = None

    def operand_of(self, op: str, *, left: bool) -> str:
        """The text, parenthesised if needed, as the left or right operand of binary `op`."""
        outer = PRECEDENCE.get(op, LOOSEST)
        keeps = self.precedence > outer or (
            self.precedence == outer
            and (
                (left and op not in RIGHT_ASSOCIATIVE)
                or (not left and op in RIGHT_ASSOCIATIVE)
                or (self.operator == op and op in ("&&", "||"))  # associative
            )
        )
        return self.text if keeps else f"({self.text})"


def expr_of(source: bytes, node: Node) -> Expr:
    return Expr(text(source, node), *_binding(source, node))


def _binding(source: bytes, node: Node) -> tuple[int, str | None]:
    if node.type == "binary_operator":
        op = operator(node) or ""
        return PRECEDENCE.get(op, LOOSEST), op
    if node.type == "unary_operator":
        return (LOOSEST if operator(node) == "&" else UNARY), None
    if node.type == "call":
        parts = call_parts(source, node)
        paren_less = parts is not None and parts.arguments is not None and not parts.parens
        return (LOOSEST if paren_less else ATOM), None
    return (ATOM if node.type in ATOMIC_TYPES else LOOSEST), None


def contains_comment(node: Node, start: int | None = None, end: int | None = None) -> bool:
    """A comment under `node` (within [start, end) when given) that regenerating the text would lose."""
    low = node.start_byte if start is None else start
    high = node.end_byte if end is None else end
    return any(n.type == "comment" and low <= n.start_byte < high for n in descendants(node))


def is_one_line(source: bytes, node: Node) -> bool:
    return b"\n" not in source[node.start_byte : node.end_byte]


# --- empty collectables ------------------------------------------------------------------------------

def empty_collectable(source: bytes, node: Node) -> str | None:
    """"Map", "MapSet" or "List" when `node` is `%{}`, `Map.new()`, `MapSet.new()` or `[]`."""
    node = unwrap_parens(node)
    if node.type == "map" and node.named_child_count == 0:
        return "Map"
    if node.type == "list" and node.named_child_count == 0:
        return "List"
    parts = call_parts(source, node)
    if parts is None or parts.name != "new" or parts.module not in ("Map", "MapSet") or not parts.parens:
        return None
    return parts.module if not parts.args and parts.keywords is None and parts.do_block is None else None


def is_integer(source: bytes, node: Node, value: int) -> bool:
    node = unwrap_parens(node)
    if node.type != "integer":
        return False
    try:
        return int(text(source, node).replace("_", ""), 0) == value
    except ValueError:
        return False


def is_list_literal(node: Node) -> bool:
    return unwrap_parens(node).type == "list"


# --- applying function arguments -----------------------------------------------------------------------

def unary_operand(node: Node) -> Node | None:
    """The operand of a unary operator (its `operand` field also lists the parentheses of `&(...)`)."""
    return next((c for c in node.named_children if c.type != "comment"), None)


def _capture_arity_one(source: bytes, node: Node) -> str | None:
    """`&name/1` or `&Mod.name/1` → "name" / "Mod.name"."""
    if node.type != "unary_operator" or operator(node) != "&":
        return None
    body = unary_operand(node)
    if body is None or body.type != "binary_operator" or operator(body) != "/":
        return None
    left, right = body.child_by_field_name("left"), body.child_by_field_name("right")
    if left is None or right is None or not is_integer(source, right, 1):
        return None
    if left.type == "identifier":
        return text(source, left)
    parts = call_parts(source, left)
    if parts is not None and parts.module is not None and parts.arguments is None:
        return text(source, left)
    return None


def _is_placeholder(source: bytes, node: Node) -> bool:
    return node.type == "unary_operator" and operator(node) == "&" and (
        (operand := unary_operand(node)) is not None and operand.type == "integer"
    )


def _is_variable_use(node: Node, name: str, source: bytes) -> bool:
    """An identifier naming variable `name` (not a function name or a field after a dot)."""
    if node.type != "identifier" or text(source, node) != name:
        return False
    parent = node.parent
    if parent is None:
        return True
    if parent.type == "call" and parent.child_by_field_name("target") == node:
        return False
    return not (parent.type == "dot" and parent.child_by_field_name("right") == node)


def _place(source: bytes, slot: Node, value: Expr) -> str:
    """`value`'s text as it must be written where `slot` (a placeholder or variable) stands."""
    parent = slot.parent
    if parent is not None and parent.type == "binary_operator":
        op = operator(parent) or ""
        return value.operand_of(op, left=parent.child_by_field_name("left") == slot)
    if parent is not None and parent.type in ("unary_operator", "dot", "access_call"):
        return value.text if value.precedence == ATOM else f"({value.text})"
    if parent is not None and parent.type == "arguments" and not _in_parens(source, parent):
        return value.text if value.precedence >= UNARY else f"({value.text})"
    return value.text


def _in_parens(source: bytes, arguments: Node) -> bool:
    return source[arguments.start_byte : arguments.start_byte + 1] == b"("


def _substitute(source: bytes, body: Node, slots: list[Node], value: Expr) -> Expr:
    if slots == [body]:
        return value
    pieces: list[str] = []
    cursor = body.start_byte
    for slot in sorted(slots, key=lambda n: n.start_byte):
        pieces.append(source[cursor : slot.start_byte].decode("utf-8"))
        pieces.append(_place(source, slot, value))
        cursor = slot.end_byte
    pieces.append(source[cursor : body.end_byte].decode("utf-8"))
    return Expr("".join(pieces), *_binding(source, body))


# Nodes that bind variables: a body containing one may shadow the parameter we rename.
_BINDING_OPERATORS = frozenset({"=", "<-"})


def _binds_variables(body: Node) -> bool:
    for node in descendants(body):
        if node.type in ("stab_clause", "do_block", "anonymous_function"):
            return True
        if node.type == "binary_operator" and operator(node) in _BINDING_OPERATORS:
            return True
        if node.type == "unary_operator" and operator(node) == "^":
            return True
    return False


def _leaks_bindings(body: Node) -> bool:
    """A match (`v = ...`) outside any nested scope: inlined, it would rebind names the other part uses."""
    for node in descendants(body):
        if node.type == "binary_operator" and operator(node) == "=":
            scope = node.parent
            while scope is not None and scope != body and scope.type not in ("anonymous_function", "do_block"):
                scope = scope.parent
            if scope is None or scope == body:
                return True
    return body.type == "binary_operator" and operator(body) == "="


@dataclass(frozen=True)
class SingleClauseFn:
    node: Node
    param: str
    body: Node


def single_clause_fn(source: bytes, node: Node) -> SingleClauseFn | None:
    """`fn v -> expr end` with one clause, one plain variable parameter, no guard and one expression."""
    node = unwrap_parens(node)
    if node.type != "anonymous_function":
        return None
    clauses = [c for c in node.named_children if c.type == "stab_clause"]
    if len(clauses) != 1 or len(node.named_children) != 1:
        return None
    left, body = clauses[0].child_by_field_name("left"), clauses[0].child_by_field_name("right")
    if left is None or body is None or left.type != "arguments" or left.named_child_count != 1:
        return None
    param = left.named_children[0]
    expressions = body.named_children
    if param.type != "identifier" or len(expressions) != 1 or expressions[0].type == "comment":
        return None
    return SingleClauseFn(node, text(source, param), expressions[0])


def apply_function(source: bytes, function: Node, value: Expr) -> Expr | None:
    """The expression `function.(value)`, written the way a person would; None if that is not possible.

    `value` is evaluated exactly once, as in the call: a body that would use it twice or not at all gets
    it only when it is a plain variable.
    """
    function = unwrap_parens(function)
    simple = value.precedence == ATOM and value.text.isidentifier()
    if function.type == "identifier":
        return Expr(f"{text(source, function)}.({value.text})", ATOM)
    if (name := _capture_arity_one(source, function)) is not None:
        return Expr(f"{name}({value.text})", ATOM)
    if function.type == "unary_operator" and operator(function) == "&":
        body = unary_operand(function)
        if body is None:
            return None
        if _is_placeholder(source, body):
            return value if text(source, body) == "&1" else None  # `& &1`, the identity
        captures = [n for n in descendants(body) if n.type == "unary_operator" and operator(n) == "&"]
        if any(not _is_placeholder(source, n) for n in captures):
            return None
        if any(text(source, n) != "&1" for n in captures) or not captures or _leaks_bindings(body):
            return None
        # Several uses would evaluate `value` several times; a nested fn could capture its variables.
        if not simple and (len(captures) != 1 or _binds_variables(body)):
            return None
        return _substitute(source, body, captures, value)
    fn = single_clause_fn(source, function)
    if fn is None or not is_one_line(source, fn.node):
        return None
    if fn.param == value.text and not _leaks_bindings(fn.body):
        return expr_of(source, fn.body)
    uses = [n for n in descendants(fn.body) if _is_variable_use(n, fn.param, source)]
    if not fn.param.startswith("_") and not _binds_variables(fn.body) and (len(uses) == 1 or simple):
        return _substitute(source, fn.body, uses, value)
    return Expr(f"({text(source, fn.node)}).({value.text})", ATOM)


def identifiers(source: bytes, node: Node) -> set[str]:
    return {text(source, n) for n in descendants(node) if n.type == "identifier"}


FRESH_NAMES = ("x", "item", "elem", "value", "entry")


def fresh_variable(source: bytes, functions: list[Node], reusable: int | None = None) -> str:
    """A parameter name for the composed fn: the parameter of one of the first `reusable` functions
    (all by default) when no other function mentions it, else the first common name none mentions."""
    reusable = len(functions) if reusable is None else reusable
    fns = [single_clause_fn(source, f) for f in functions]
    params = [fn.param for fn in fns[:reusable] if fn is not None]
    for name in [*params, *FRESH_NAMES, *(f"x{i}" for i in range(1, 100))]:
        if name.startswith("_"):
            continue
        if all(
            (index < reusable and fn is not None and fn.param == name) or name not in identifiers(source, function)
            for index, (function, fn) in enumerate(zip(functions, fns, strict=True))
        ):
            return name
    return "x"


def fused_fn_call(pair: FusedPair, module: str, name: str, variable: str, body: str) -> Edit | None:
    """`Module.name(fn var -> body end)` replacing the pair; broken over lines as `mix format` would when
    the result is too long (only where the replacement starts its line, as a pipe step or statement)."""
    one_line = pair.call(module, name, [f"fn {variable} -> {body} end"])
    source = pair.source
    line_start = source.rfind(b"\n", 0, pair.start) + 1
    prefix = source[line_start : pair.start].decode("utf-8")
    rest = source[pair.end : source.find(b"\n", pair.end) if b"\n" in source[pair.end :] else len(source)]
    if len(prefix) + len(one_line) + len(rest.decode("utf-8")) <= LINE_LENGTH:
        return pair.replace_with(one_line)
    indent = indentation(source, pair.start)
    if "\n" in body or prefix.strip() not in ("", "|>") or len(indent) + 2 + len(body) > LINE_LENGTH:
        return None
    head = pair.call(module, name, [f"fn {variable} ->"])[:-1]
    return pair.replace_with(f"{head}\n{indent}  {body}\n{indent}end)")


def pair_has_comment(pair: FusedPair, outer: Node) -> bool:
    """A comment inside the span the fused call replaces (it would be lost)."""
    node = outer
    while node.parent is not None and (node.start_byte > pair.start or node.end_byte < pair.end):
        node = node.parent
    return contains_comment(node, pair.start, pair.end)


def fused(match: Match, inner_module: str, inner_names: tuple[str, ...], *modules: str) -> FusedPair | None:
    """The fusable pair whose outer call is the finding, with a one-function inner step; stdlib only."""
    if not match.stdlib(inner_module, *modules):
        return None
    outer = match.node("finding")
    pair = fused_pair(match.source, outer, inner_module, inner_names)
    if pair is None or len(pair.inner_extra) != 1 or pair_has_comment(pair, outer):
        return None
    return pair


def fuse_to(pair: FusedPair, module: str, name: str, leading: tuple[Node, ...] = ()) -> list[Edit]:
    """Replace the pair by `module.name(leading..., inner function)`."""
    args = [pair.arg(node) for node in (*leading, pair.inner_extra[0])]
    return [pair.replace_with(pair.call(module, name, args))]


# --- Enum.reverse(a) ++ b --------------------------------------------------------------------------------

def reverse_append(match: Match, *, list_tail: bool) -> list[Edit] | None:
    """`Enum.reverse(a) ++ b` (the finding) → `Enum.reverse(a, b)`, when `b` is (`list_tail`) or is not
    a list literal: reverse/2 enumerates a non-list `b` where `++` would build an improper list."""
    node = match.node("finding")
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    reverse = call_parts(match.source, left)
    if reverse is None or right is None or not match.stdlib("Enum"):
        return None
    if len(reverse.args) != 1 or reverse.keywords is not None or not reverse.parens or reverse.do_block:
        return None
    if is_list_literal(right) != list_tail or contains_comment(node):
        return None
    tail = text(match.source, unwrap_parens(right))
    return [Edit(node.start_byte, node.end_byte, f"Enum.reverse({text(match.source, reverse.args[0])}, {tail})")]


# --- emptiness tests -------------------------------------------------------------------------------------

# operator → whether `size OP 0` / `0 OP size` asks "non-empty?" (None: not an emptiness test).
_ZERO_TESTS: dict[str, tuple[bool | None, bool | None]] = {
    "==": (False, False),
    "===": (False, False),
    "!=": (True, True),
    "!==": (True, True),
    ">": (True, None),
    "<": (None, True),
}


def zero_comparison(source: bytes, node: Node) -> tuple[Node, bool] | None:
    """(the measured side, asks non-empty?) of `size == 0`, `size > 0`, `0 != size`, ..."""
    tests = _ZERO_TESTS.get(operator(node) or "")
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    if tests is None or left is None or right is None:
        return None
    if is_integer(source, right, 0) and tests[0] is not None:
        return left, tests[0]
    if is_integer(source, left, 0) and tests[1] is not None:
        return right, tests[1]
    return None


def measured_call(source: bytes, measured: Node, module: str | None, name: str) -> tuple[Node, Node | None] | None:
    """(the call, its subject) for `module.name(subject)` or `subject |> module.name()`: a one-step pipe
    gives the subject; a longer chain gives None (the chain stays a pipe)."""
    if measured.type == "call":
        parts = call_parts(source, measured)
        if parts is None or parts.module != module or parts.name != name or len(parts.args) != 1:
            return None
        if not parts.parens or parts.keywords is not None or parts.do_block is not None:
            return None
        return measured, parts.args[0]
    if measured.type == "binary_operator" and operator(measured) == "|>":
        step = measured.child_by_field_name("right")
        parts = call_parts(source, step)
        if parts is None or parts.module != module or parts.name != name or parts.args or not parts.parens:
            return None
        if parts.keywords is not None or parts.do_block is not None:
            return None
        start = measured.child_by_field_name("left")
        return step, (None if is_pipe(start) else start)
    return None


def in_context(node: Node, replacement: Expr) -> str:
    """`replacement` for `node`, parenthesised if the operator around `node` would bind it differently."""
    parent = node.parent
    if parent is None or parent.type != "binary_operator":
        return replacement.text
    return replacement.operand_of(operator(parent) or "", left=parent.child_by_field_name("left") == node)


def in_guard(node: Node) -> bool:
    """`node` is inside the guard of a `when` (a def head, a case/fn clause)."""
    child, parent = node, node.parent
    while parent is not None:
        if parent.type == "binary_operator" and operator(parent) == "when" and parent.child_by_field_name("right") == child:
            return True
        child, parent = parent, parent.parent
    return False

"""`then` around a capture that only feeds its argument first is redundant: call the function.

Fires when `&1` appears exactly once, as the first argument (`then(&f(&1, 2))` → `f(2)`), or for a
named 1-arity capture (`then(&Mod.f/1)` → `Mod.f()`). Captures of operators, of macros such as `if`,
or that use `&1` elsewhere keep their `then`.

Before:
    a |> then(&f(&1, 2)) |> b()
After:
    a |> f(2) |> b()
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.nodes import Node, call_parts, operator, replace, text, unwrap_parens
from lsp.idioms.pipes_helpers import (
    NOT_PIPEABLE_LOCALS,
    call_without_first,
    comment_outside,
    first_item,
    is_pipe_right,
    is_pipeable_call,
)


def rewrite(match: Match) -> list[Edit] | None:
    source = match.source
    then_call, capture = match.node("finding"), match.node("capture")
    subject = match.get("subject")
    if (subject is None) != is_pipe_right(then_call):
        return None
    # In `&(f(&1))` the parentheses belong to the operator node and its `operand` field is "(".
    if not capture.named_children:
        return None
    body = unwrap_parens(capture.named_children[-1])
    if body.type == "binary_operator":
        call = _named_capture(source, body)
        kept: list[tuple[int, int]] = []
    else:
        reduced = _first_placeholder_call(source, body)
        if reduced is None:
            return None
        call, kept = reduced
    if call is None or comment_outside(then_call, kept):
        return None
    if subject is None:
        return [replace(then_call, call)]
    if "\n" in call or "\n" in text(source, subject):
        return None
    head, _, args = call.partition("(")
    args = args[:-1]
    return [replace(then_call, f"{head}({text(source, subject)}{', ' + args if args else ''})")]


def _named_capture(source: bytes, body: Node) -> str | None:
    """`&f/1` → `f()`, `&Mod.f/1` → `Mod.f()`."""
    if operator(body) != "/":
        return None
    function, arity = body.child_by_field_name("left"), body.child_by_field_name("right")
    if function is None or arity is None or arity.type != "integer" or text(source, arity) != "1":
        return None
    parts = call_parts(source, function)
    if parts is None or parts.arguments is not None or parts.do_block is not None:
        return None
    if parts.module is None and parts.name in NOT_PIPEABLE_LOCALS:
        return None
    return f"{text(source, function)}()"


def _first_placeholder_call(source: bytes, body: Node) -> tuple[str, list[tuple[int, int]]] | None:
    """`f(&1, y)` → `f(y)` when `&1` is its first argument and no other placeholder is used."""
    parts = call_parts(source, body)
    if parts is None or not is_pipeable_call(parts):
        return None
    first = first_item(parts)
    if first is None or not _is_placeholder(source, first, "1"):
        return None
    if any(_uses_placeholder(source, node) for node in parts.args[1:]) or (
        parts.keywords is not None and _uses_placeholder(source, parts.keywords)
    ):
        return None
    reduced = call_without_first(source, parts)
    if reduced is None:
        return None
    return reduced.text, [reduced.kept] if reduced.kept else []


def _is_placeholder(source: bytes, node: Node, number: str | None = None) -> bool:
    if node.type != "unary_operator" or operator(node) != "&":
        return False
    operand = node.child_by_field_name("operand")
    return operand is not None and operand.type == "integer" and (number is None or text(source, operand) == number)


def _uses_placeholder(source: bytes, node: Node) -> bool:
    stack = [node]
    while stack:
        current = stack.pop()
        if _is_placeholder(source, current):
            return True
        stack.extend(current.named_children)
    return False


RULE = Rule(
    id="redundant_then",
    title="|> then(&f(&1, y)) → |> f(y)",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("a |> then(&f(&1, 2)) |> b()", "a |> f(2) |> b()"),
        Example("ids = rows |> Enum.map(& &1.id) |> then(&Enum.uniq/1)", "ids = rows |> Enum.map(& &1.id) |> Enum.uniq()"),
        Example(
            "def render(data) do\n"
            "  data\n"
            "  |> then(&Jason.encode!(&1, pretty: true))\n"
            "  |> then(&IO.puts/1)\n"
            "end",
            "def render(data) do\n"
            "  data\n"
            "  |> Jason.encode!(pretty: true)\n"
            "  |> IO.puts()\n"
            "end",
        ),
        Example("result = then(value, &Map.put(&1, :seen, true))", "result = Map.put(value, :seen, true)"),
        Example("x |> then(&(String.pad_leading(&1, 4)))", "x |> String.pad_leading(4)"),
        # `&1` used twice or not first; an operator capture; a capture of arity 2.
        Example("x |> then(&f(&1, &1))\nx |> then(&f(1, &1))", None),
        Example("x |> then(&(&1 * 2))\nx |> then(&Map.merge/2)\nx |> then(fn y -> f(y) end)", None),
    ),
)

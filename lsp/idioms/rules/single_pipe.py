"""A chain with a single `|>` becomes a plain call.

`|> dbg()` and `|> unquote(...)` stay piped (their meaning depends on the pipe). Pipes left to other
rules stay too: a start pipe_chain_start lifts (`f(x, y) |> g()`), a pipe that is the first argument
pipeify_nested_pipe extends, and `if`/`case` blocks piped onward. The input must fit on one line.

Before:
    foo = bar |> baz(1)
After:
    foo = baz(bar, 1)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.nodes import (
    call_parts,
    indentation,
    is_pipe,
    line_start,
    operator,
    reindent,
    text,
    unwrap_parens,
)
from lsp.idioms.pipes_helpers import (
    LINE_LENGTH,
    call_with_first,
    comment_outside,
    is_first_argument,
    liftable_start,
    owner_call,
    pipeify_calls,
)

# Their result depends on being piped: dbg prints each step, unquote injects into the quoted pipe.
KEEP_PIPED = frozenset({"dbg", "unquote", "unquote_splicing"})


def rewrite(match: Match) -> list[Edit] | None:
    source = match.source
    pipe, step = match.node("finding"), match.node("step")
    raw_input = match.node("input")
    if is_pipe(raw_input) or is_pipe(pipe.parent) or _is_parenthesised_pipe_operand(pipe):
        return None
    parts = call_parts(source, step)
    if parts is None or parts.do_block is not None or parts.name in KEEP_PIPED:
        return None
    value = unwrap_parens(raw_input)
    if value.type == "block" or is_pipe(value) or b"\n" in source[value.start_byte : value.end_byte]:
        return None
    if any(child.type == "do_block" for child in value.named_children) or liftable_start(source, raw_input):
        return None
    if _pipeify_would_extend(source, pipe):
        return None
    call = call_with_first(source, parts, text(source, value))
    if call is None or comment_outside(pipe, [(value.start_byte, value.end_byte), (step.start_byte, step.end_byte)]):
        return None
    call = reindent(call, indentation(source, step.start_byte), indentation(source, pipe.start_byte))
    edits = [_replace_in_capture(pipe, call)]
    joined = _join_after_match(source, pipe, call)
    if joined is not None:
        edits.append(joined)
    return edits


def _is_parenthesised_pipe_operand(pipe) -> bool:
    # `(a |> b()) |> c()` is one chain to the reader.
    parent = pipe.parent
    return parent is not None and parent.type == "block" and is_pipe(parent.parent)


def _replace_in_capture(pipe, call: str) -> Edit:
    """Replace the pipe; `&(x |> f())` and `& x |> f()` become `&f(x)`, as mix format prints them."""
    parent = pipe.parent
    if parent is not None and parent.type == "unary_operator" and operator(parent) == "&":
        ampersand = parent.child_by_field_name("operator")
        if ampersand is not None and parent.named_child_count == 1:
            return Edit(ampersand.end_byte, parent.end_byte, call)
    return Edit(pipe.start_byte, pipe.end_byte, call)


def _pipeify_would_extend(source: bytes, pipe) -> bool:
    owner = owner_call(pipe) if is_first_argument(pipe) else None
    return owner is not None and pipeify_calls(source, owner) is not None


def _join_after_match(source: bytes, pipe, call: str) -> Edit | None:
    """`x =\\n  y |> f()` → `x = f(y)`, as mix format joins a short match."""
    parent = pipe.parent
    if "\n" in call or parent is None or parent.type != "binary_operator":
        return None
    op = parent.child_by_field_name("operator")
    if op is None or op.type != "=" or parent.child_by_field_name("right") != pipe:
        return None
    gap = source[op.end_byte : pipe.start_byte]
    if b"\n" not in gap or gap.strip():
        return None
    head = source[line_start(source, op.start_byte) : op.end_byte].decode("utf-8")
    line_end = source.find(b"\n", pipe.end_byte)
    tail = source[pipe.end_byte : len(source) if line_end < 0 else line_end].decode("utf-8")
    if len(f"{head} {call}{tail}") > LINE_LENGTH:
        return None
    return Edit(op.end_byte, pipe.start_byte, " ")


RULE = Rule(
    id="single_pipe",
    title="x |> f(y) → f(x, y)",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("foo = bar |> baz(1)", "foo = baz(bar, 1)"),
        Example(
            "def slug(title), do: title |> String.downcase()",
            "def slug(title), do: String.downcase(title)",
        ),
        Example(
            "def names(users) do\n"
            "  names =\n"
            "    users\n"
            "    |> Enum.map(& &1.name)\n"
            "\n"
            "  Enum.join(names, \", \")\n"
            "end",
            "def names(users) do\n"
            "  names = Enum.map(users, & &1.name)\n"
            "\n"
            "  Enum.join(names, \", \")\n"
            "end",
        ),
        Example(
            "def run(items) do\n"
            "  items\n"
            "  |> Enum.each(fn item ->\n"
            "    IO.puts(item)\n"
            "  end)\n"
            "end",
            "def run(items) do\n"
            "  Enum.each(items, fn item ->\n"
            "    IO.puts(item)\n"
            "  end)\n"
            "end",
        ),
        Example("x = (a + b) |> div(2)\ny = @config |> Keyword.get(:key, :default)",
                "x = div(a + b, 2)\ny = Keyword.get(@config, :key, :default)"),
        Example("count = list |> length\nname = user |> User.name", "count = length(list)\nname = User.name(user)"),
        # Two pipes; dbg keeps its pipe; a call start is pipe_chain_start's to lift.
        Example("a |> b() |> c()\nvalue |> dbg()\nString.trim(s, \"x\") |> String.upcase()", None),
        Example("d(a |> b())\nx |> unquote(fun)(1)", None),
    ),
)

"""Helpers shared by the pipe rules: moving a call's first argument in and out of a pipe, laying a
chain out as `mix format` does, and deciding where a chain may stand without parentheses."""

from __future__ import annotations

from dataclasses import dataclass

from lsp.idioms.nodes import (
    ATOMIC_TYPES,
    CallParts,
    Node,
    call_parts,
    indentation,
    is_pipe,
    line_start,
    operator,
    pipe_root,
    pipe_steps,
    reindent,
    text,
)

# Macros and special forms whose first argument is not "data": piping into them reads badly or
# changes nothing but style for the worse.
NOT_PIPEABLE_LOCALS = frozenset(
    {
        "case", "cond", "if", "unless", "for", "with", "try", "receive", "quote", "unquote",
        "unquote_splicing", "fn", "from", "super", "dbg", "import", "require", "alias", "use",
        "def", "defp", "defmacro", "defmacrop", "defmodule", "defstruct", "defguard", "defguardp",
        "defdelegate", "defimpl", "defprotocol", "__block__",
    }
)
# Ecto's `from/2` keeps its query binding as the first argument by convention.
NOT_PIPEABLE_REMOTES = frozenset({("Query", "from"), ("Ecto.Query", "from")})

# As tight as `|>`: a chain may be the left operand of these, never the right one.
PIPE_LEVEL = frozenset({"|>", "<<<", ">>>", "<<~", "~>>", "<~", "~>", "<~>"})
# Binding looser than `|>`: a whole chain may be either operand.
BINDS_AFTER_PIPE = frozenset(
    {
        "<", ">", "<=", ">=", "==", "!=", "=~", "===", "!==", "&&", "&&&", "and", "||", "|||",
        "or", "=", "=>", "|", "::", "when", "<-", "\\\\",
    }
)
TIGHT_UNARY = frozenset({"@", "-", "+", "!", "^", "not", "~~~"})
# Parents in which an expression stands alone, so a chain can replace it as is.
STATEMENT_PARENTS = frozenset(
    {
        "source", "do_block", "else_block", "after_block", "rescue_block", "catch_block", "body",
        "block", "arguments", "pair", "list", "tuple", "map_content", "interpolation",
    }
)

# mix format's default line length.
LINE_LENGTH = 98


def is_pipeable_call(parts: CallParts | None) -> bool:
    """A parenthesised call with a first positional argument that may move in front of a `|>`."""
    if parts is None or not parts.parens or parts.do_block is not None or not parts.args:
        return False
    if parts.module is None:
        return parts.name not in NOT_PIPEABLE_LOCALS and not parts.name.startswith("sigil_")
    return (parts.module, parts.name) not in NOT_PIPEABLE_REMOTES


def first_item(parts: CallParts) -> Node | None:
    """The first argument as written (None when a comment or a keyword list comes first)."""
    assert parts.arguments is not None
    children = parts.arguments.named_children
    if not children or children[0].type in ("comment", "keywords"):
        return None
    return children[0]


def is_first_argument(node: Node) -> bool:
    parent = node.parent
    return parent is not None and parent.type == "arguments" and parent.named_children[0] == node


def owner_call(node: Node) -> Node | None:
    """The call whose parenthesised arguments hold `node`."""
    parent = node.parent
    if parent is None or parent.type != "arguments":
        return None
    owner = parent.parent
    return owner if owner is not None and owner.type == "call" else None


def is_pipe_right(node: Node) -> bool:
    parent = node.parent
    return is_pipe(parent) and parent.child_by_field_name("right") == node


def is_pipe_left(node: Node) -> bool:
    parent = node.parent
    return is_pipe(parent) and parent.child_by_field_name("left") == node


def starts_line(source: bytes, byte: int) -> bool:
    return source[line_start(source, byte) : byte].strip() == b""


def pipe_left_operand(source: bytes, node: Node) -> str:
    """The node's text, parenthesised (as mix format prints it) unless it is a single operand."""
    body = text(source, node)
    if node.type == "call":
        parts = call_parts(source, node)
        paren_less = parts is not None and parts.arguments is not None and not parts.parens
        return f"({body})" if paren_less or _has_do_block(node) else body
    if node.type in ATOMIC_TYPES:
        return body
    if node.type == "unary_operator":
        operand = node.child_by_field_name("operand")
        # `&1` is a value; `&f/1` or `&(&1 + 1)` would swallow the pipe.
        placeholder = operator(node) == "&" and operand is not None and operand.type == "integer"
        tight = operator(node) in TIGHT_UNARY and operand is not None and operand.type in ATOMIC_TYPES
        if placeholder or (tight and operand.type != "call"):
            return body
    if is_pipe(node):
        return body
    return f"({body})"


def _has_do_block(node: Node) -> bool:
    return any(child.type == "do_block" for child in node.named_children)


def chain_may_replace(node: Node) -> bool:
    """True when a pipe chain put in place of `node` parses as one operand, without parentheses."""
    parent = node.parent
    if parent is None or parent.type in STATEMENT_PARENTS:
        return True
    if parent.type == "binary_operator":
        op = operator(parent)
        if op in BINDS_AFTER_PIPE:
            return True
        return op in PIPE_LEVEL and parent.child_by_field_name("left") == node
    return False


@dataclass(frozen=True)
class ChainLayout:
    vertical: bool  # every `|>` starts a line, as mix format lays out multi-line chains
    mixed: bool  # multi-line, yet some `|>` shares a line: leave such code to the formatter


def chain_layout(source: bytes, pipe: Node) -> ChainLayout:
    root = pipe_root(pipe)
    if b"\n" not in source[root.start_byte : root.end_byte]:
        return ChainLayout(False, False)
    node = root
    while is_pipe(node):
        op = node.child_by_field_name("operator")
        if op is None or not starts_line(source, op.start_byte):
            return ChainLayout(False, True)
        node = node.child_by_field_name("left")
    return ChainLayout(True, False)


@dataclass(frozen=True)
class Reduced:
    """A call rewritten without its first argument; `kept` spans the source text it still holds."""

    text: str
    kept: tuple[int, int] | None


def call_without_first(source: bytes, parts: CallParts) -> Reduced | None:
    """`f(a, b, c)` → `f(b, c)`, keeping the layout of `b, c` (one remaining argument joins its line)."""
    first = first_item(parts) if parts.arguments is not None else None
    if first is None or not parts.parens:
        return None
    arguments = parts.arguments
    assert arguments is not None
    head = source[parts.node.start_byte : arguments.start_byte].decode("utf-8")
    rest = list(arguments.named_children[1:])
    if not rest:
        return Reduced(f"{head}()", None)
    if rest[0].type == "comment":
        return None
    close = arguments.end_byte
    items = [c for c in rest if c.type != "comment"]
    vertical = b"\n" in source[arguments.start_byte : first.start_byte]
    if vertical and len(items) == 1 and len(rest) == 1 and b"\n" not in _bytes(source, items[0]):
        # mix format joins a call that is left with one short argument.
        return Reduced(f"{head}({text(source, items[0])})", (items[0].start_byte, items[0].end_byte))
    opening = source[arguments.start_byte + 1 : first.start_byte].decode("utf-8") if vertical else ""
    body = source[rest[0].start_byte : close].decode("utf-8")
    return Reduced(f"{head}({opening}{body}", (rest[0].start_byte, close))


def call_with_first(source: bytes, parts: CallParts, first: str) -> str | None:
    """`f(b, c)` with `first` put in front: `f(first, b, c)`; `f` and `Mod.f` (no parentheses) too."""
    if parts.arguments is None:
        if parts.do_block is not None:
            return None
        return f"{text(source, parts.node)}({first})"
    if not parts.parens:
        return None
    arguments = parts.arguments
    head = source[parts.node.start_byte : arguments.start_byte + 1].decode("utf-8")
    children = arguments.named_children
    if children and children[0].type == "comment":
        return None
    if not children:
        return f"{head}{first}{source[arguments.start_byte + 1 : parts.node.end_byte].decode('utf-8')}"
    opening = source[arguments.start_byte + 1 : children[0].start_byte].decode("utf-8")
    tail = source[children[0].start_byte : parts.node.end_byte].decode("utf-8")
    separator = f",{opening}" if "\n" in opening else ", "
    return f"{head}{opening}{first}{separator}{tail}"


def _bytes(source: bytes, node: Node) -> bytes:
    return source[node.start_byte : node.end_byte]


def lifted_chain(source: bytes, value: Node, calls: list[CallParts], anchor: Node,
                 vertical: bool = False) -> str | None:
    """The chain `value |> call1(rest) |> call2(rest) ...` that replaces `anchor`.

    `calls` run innermost first and lose their first argument; a `value` that is a chain contributes
    its steps. Multi-line pieces make the chain vertical, aligned on the anchor's line.
    """
    indent = indentation(source, anchor.start_byte)
    texts: list[str] = []
    kept: list[tuple[int, int]] = []
    pieces = pipe_steps(value) if is_pipe(value) else [value]
    for piece in pieces:
        body = text(source, piece) if is_pipe(value) else pipe_left_operand(source, piece)
        texts.append(reindent(body, indentation(source, piece.start_byte), indent))
        kept.append((piece.start_byte, piece.end_byte))
    for parts in calls:
        reduced = call_without_first(source, parts)
        if reduced is None:
            return None
        texts.append(reindent(reduced.text, indentation(source, parts.node.start_byte), indent))
        if reduced.kept is not None:
            kept.append(reduced.kept)
    if comment_outside(anchor, kept):
        return None
    vertical = vertical or any("\n" in t for t in texts) or b"\n" in _bytes(source, anchor)
    if vertical and not starts_line(source, anchor.start_byte):
        return None
    separator = f"\n{indent}|> " if vertical else " |> "
    return separator.join(texts)


def comment_outside(node: Node, kept: list[tuple[int, int]]) -> bool:
    """A comment under `node` that lies in none of the `kept` spans would be lost by a rewrite."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "comment":
            if not any(start <= current.start_byte and current.end_byte <= end for start, end in kept):
                return True
            continue
        if any(start <= current.start_byte and current.end_byte <= end for start, end in kept):
            continue
        stack.extend(current.children)
    return False


def liftable_start(source: bytes, node: Node) -> CallParts | None:
    """The call starting a pipe chain whose first argument pipe_chain_start would lift out."""
    if not is_pipe_left(node):
        return None
    parts = call_parts(source, node)
    return parts if is_pipeable_call(parts) and first_item(parts) is not None else None


def pipeify_calls(source: bytes, call: Node) -> list[CallParts] | None:
    """The calls (innermost first) that take the chain in `call`'s first argument as their input.

    Climbs out while the enclosing call takes the result as its own first argument, and stops at the
    outermost call where a chain may stand without parentheses.
    """
    parts = call_parts(source, call)
    if not is_pipeable_call(parts) or parts is None:
        return None
    first = first_item(parts)
    if first is None or not is_pipe(first):
        return None
    calls = [parts]
    node = call
    while is_first_argument(node) and (owner := owner_call(node)) is not None:
        owner_parts = call_parts(source, owner)
        if not is_pipeable_call(owner_parts) or owner_parts is None or is_pipe_right(owner):
            break
        calls.append(owner_parts)
        node = owner
    while calls and (is_pipe_right(calls[-1].node) or not chain_may_replace(calls[-1].node)):
        calls.pop()
    return calls or None

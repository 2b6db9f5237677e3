"""Small, pure helpers over tree-sitter-elixir nodes shared by the idiom rules.

Node shapes (tree-sitter-elixir 0.3.5): a call is `(call target: (identifier | dot) (arguments ...)?
(do_block ...)?)`; a remote target is `(dot left: (alias) right: (identifier))`; keyword arguments are a
trailing `(keywords (pair key: (keyword) value: ...))`; `do ... end` bodies are the direct children of
`do_block`, with `else_block` etc. after them; a parenthesised expression is a `block`; pipes are
left-associative `binary_operator`s with operator "|>".
"""

from __future__ import annotations

from dataclasses import dataclass

import tree_sitter

from lsp.idioms.base import Edit

Node = tree_sitter.Node


def text(source: bytes, node: Node) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8")


def replace(node: Node, new_text: str) -> Edit:
    return Edit(node.start_byte, node.end_byte, new_text)


def operator(node: Node) -> str | None:
    """The operator token of a binary/unary operator node."""
    op = node.child_by_field_name("operator")
    return op.type if op is not None else None


def is_pipe(node: Node | None) -> bool:
    return node is not None and node.type == "binary_operator" and operator(node) == "|>"


def pipe_root(node: Node) -> Node:
    """The outermost `|>` of the chain `node` belongs to."""
    while is_pipe(node.parent):
        node = node.parent
    return node


def pipe_steps(root: Node) -> list[Node]:
    """[start, step1, step2, ...] of a pipe chain, in source order."""
    steps: list[Node] = []
    node = root
    while is_pipe(node):
        steps.append(node.child_by_field_name("right"))
        node = node.child_by_field_name("left")
    steps.append(node)
    return steps[::-1]


@dataclass(frozen=True)
class CallParts:
    node: Node
    module: str | None  # "Enum" for Enum.map(...), ":lists" for :lists.map, None for local calls
    name: str
    arguments: Node | None  # the `arguments` node (absent for `foo` in `x |> foo`)
    args: tuple[Node, ...]  # positional arguments (a trailing keyword list is in `keywords`)
    keywords: Node | None
    do_block: Node | None
    parens: bool


def call_parts(source: bytes, node: Node | None) -> CallParts | None:
    """Decompose a call (`f(a)`, `M.f(a)`, `f a`, or a bare identifier used as a call in a pipe)."""
    if node is None:
        return None
    if node.type == "identifier":
        return CallParts(node, None, text(source, node), None, (), None, None, False)
    if node.type != "call":
        return None
    target = node.child_by_field_name("target")
    if target is None:
        return None
    if target.type == "identifier":
        module, name = None, text(source, target)
    elif target.type == "dot":
        left, right = target.child_by_field_name("left"), target.child_by_field_name("right")
        if left is None or right is None or right.type != "identifier" or left.type not in ("alias", "atom"):
            return None
        module, name = text(source, left), text(source, right)
    else:
        return None
    arguments = next((c for c in node.named_children if c.type == "arguments"), None)
    do_block = next((c for c in node.named_children if c.type == "do_block"), None)
    args: list[Node] = []
    keywords = None
    if arguments is not None:
        for child in arguments.named_children:
            if child.type == "comment":
                continue
            if child.type == "keywords":
                keywords = child
            else:
                args.append(child)
    parens = arguments is not None and source[arguments.start_byte : arguments.start_byte + 1] == b"("
    return CallParts(node, module, name, arguments, tuple(args), keywords, do_block, parens)


# Keywords that define a named function or macro with a head.
DEF_KEYWORDS = frozenset({"def", "defp", "defmacro", "defmacrop"})


def definition_signature(source: bytes, definition: Node) -> tuple[str, int] | None:
    """(name, arity) of a `def`/`defp`/`defmacro`/`defmacrop` call: its head, guard (`when`) stripped."""
    parts = call_parts(source, definition)
    if parts is None or parts.module is not None or parts.name not in DEF_KEYWORDS or not parts.args:
        return None
    head = parts.args[0]
    if head.type == "binary_operator" and operator(head) == "when":
        head = head.child_by_field_name("left") or head
    head_parts = call_parts(source, head)
    if head_parts is None or head_parts.module is not None:
        return None
    return head_parts.name, len(head_parts.args) + (1 if head_parts.keywords is not None else 0)


def is_remote(parts: CallParts | None, module: str, *names: str) -> bool:
    return parts is not None and parts.module == module and (not names or parts.name in names)


def keyword_pairs(source: bytes, keywords: Node | None) -> list[tuple[str, Node, Node]]:
    """[(key without the colon, pair node, value node)] of a `keywords` node."""
    if keywords is None:
        return []
    pairs = []
    for pair in keywords.named_children:
        if pair.type != "pair":
            continue
        key, value = pair.child_by_field_name("key"), pair.child_by_field_name("value")
        if key is None or value is None:
            continue
        pairs.append((text(source, key).strip().rstrip(":").strip(), pair, value))
    return pairs


def block_body(do_block: Node) -> list[Node]:
    """Expressions of the `do` part of a `do_block` (before any else/rescue/catch/after block)."""
    body = []
    for child in do_block.named_children:
        if child.type.endswith("_block"):
            break
        if child.type != "comment":
            body.append(child)
    return body


def sub_block(do_block: Node, kind: str) -> Node | None:
    """The `else_block` / `rescue_block` / ... of a `do_block`."""
    return next((c for c in do_block.named_children if c.type == f"{kind}_block"), None)


def line_start(source: bytes, byte: int) -> int:
    return source.rfind(b"\n", 0, byte) + 1


def indentation(source: bytes, byte: int) -> str:
    """The leading whitespace of the line containing `byte`."""
    start = line_start(source, byte)
    end = start
    while end < len(source) and source[end : end + 1] in (b" ", b"\t"):
        end += 1
    return source[start:end].decode("utf-8")


def reindent(block: str, old: str, new: str) -> str:
    """Re-indent every line but the first of `block` from indentation `old` to `new`."""
    lines = block.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        out.append(new + line[len(old) :] if line.startswith(old) else line)
    return "\n".join(out)


def unwrap_parens(node: Node) -> Node:
    """`(expr)` → expr; anything else unchanged."""
    while node.type == "block" and node.named_child_count == 1:
        node = node.named_children[0]
    return node


# Node types that can stand as an operand of an operator or a pipe without parentheses.
ATOMIC_TYPES = frozenset(
    {
        "identifier", "alias", "atom", "integer", "float", "string", "charlist", "sigil", "boolean", "nil",
        "list", "tuple", "map", "call", "access_call", "block", "char", "quoted_atom", "bitstring",
        "anonymous_function",
    }
)


def operand(source: bytes, node: Node) -> str:
    """The node's text, parenthesised when it would not bind as a single operand."""
    body = text(source, node)
    if node.type in ATOMIC_TYPES and not (node.type == "call" and _is_paren_less_call(source, node)):
        return body
    return f"({body})"


def _is_paren_less_call(source: bytes, node: Node) -> bool:
    parts = call_parts(source, node)
    return parts is not None and parts.arguments is not None and not parts.parens

"""Helpers shared by the single-node, function-head and module-directive idiom rules."""

from __future__ import annotations

from dataclasses import dataclass

from lsp.idioms.base import Edit, Match
from lsp.idioms.nodes import CallParts, Node, call_parts, is_pipe, text

# Keyword-like tokens that cannot follow `Mod.` as a plain function name without quoting.
RESERVED_WORDS = frozenset(
    {
        "do",
        "end",
        "fn",
        "nil",
        "true",
        "false",
        "when",
        "and",
        "or",
        "not",
        "in",
        "catch",
        "rescue",
        "after",
        "else",
    }
)


def has_comment(node: Node) -> bool:
    """Whether a comment sits anywhere inside `node` (rewriting its text would drop it)."""
    if node.type == "comment":
        return True
    return any(has_comment(child) for child in node.children)


def is_piped(node: Node) -> bool:
    """Whether `node` is the right-hand step of a `|>` (its first argument comes from the pipe)."""
    return is_pipe(node.parent) and node.parent.child_by_field_name("right") == node


@dataclass(frozen=True)
class StdlibCall:
    parts: CallParts
    piped: bool
    # Positional arguments after the subject, which is the pipe's left side or the first argument.
    rest: tuple[Node, ...]
    name_node: Node  # the function-name identifier after the dot

    def rename(self, new_name: str) -> Edit:
        return Edit(self.name_node.start_byte, self.name_node.end_byte, new_name)

    def replace_last(self, source: bytes, new_text: str) -> Edit:
        """Replace the last argument; a call spread over lines is joined, as `mix format` would once
        the (shorter) arguments fit."""
        arguments = self.parts.arguments
        last = self.rest[-1]
        others = [arg for arg in self.parts.args if arg != last]
        one_line = arguments.start_point.row == arguments.end_point.row
        if one_line or not self.parts.parens or any(a.start_point.row != a.end_point.row for a in others):
            return Edit(last.start_byte, last.end_byte, new_text)
        texts = [text(source, arg) for arg in others] + [new_text]
        return Edit(arguments.start_byte, arguments.end_byte, f"({', '.join(texts)})")


def stdlib_call(
    match: Match, node: Node, module: str, name: str, arity: int, keywords_ok: bool = False
) -> StdlibCall | None:
    """`module.name` called on a subject plus `arity - 1` arguments (piped or not), else None.

    A trailing keyword list counts as the last argument only with `keywords_ok`; do-blocks, comments
    inside the call and a user module aliased as `module` make it None.
    """
    if not match.stdlib(module):
        return None
    parts = call_parts(match.source, node)
    if parts is None or parts.module != module or parts.name != name or parts.arguments is None:
        return None
    if (parts.keywords is not None and not keywords_ok) or parts.do_block is not None:
        return None
    if has_comment(parts.arguments):
        return None
    piped = is_piped(node)
    args = parts.args if piped else parts.args[1:]
    if parts.keywords is not None:
        args = (*args, parts.keywords)
    if len(args) != arity - 1 or (not piped and not parts.args):
        return None
    target = node.child_by_field_name("target")
    return StdlibCall(parts, piped, tuple(args), target.child_by_field_name("right"))


def key_atom(source: bytes, key: Node) -> str:
    """The atom a `keyword` / `quoted_keyword` key stands for: `a: ` → `:a`, `"a b": ` → `:"a b"`."""
    return ":" + text(source, key).strip().removesuffix(":")


def single_keyword_pair(container: Node) -> Node | None:
    """The only `pair` of a `keywords` node, or of the `keywords` directly inside `container`."""
    keywords = container if container.type == "keywords" else None
    if keywords is None:
        named = [c for c in container.named_children if c.type != "comment"]
        if len(named) != 1 or named[0].type != "keywords":
            return None
        keywords = named[0]
    pairs = [c for c in keywords.named_children if c.type == "pair"]
    if len(pairs) != 1 or len(keywords.named_children) != 1:
        return None
    return pairs[0]


def key_value_args(source: bytes, pair: Node) -> str:
    """`k: v` → `:k, v`; `"k" => v` → `"k", v` (the arguments of a `put`)."""
    if pair.type == "pair":
        key, value = pair.child_by_field_name("key"), pair.child_by_field_name("value")
        return f"{key_atom(source, key)}, {text(source, value)}"
    left, right = pair.child_by_field_name("left"), pair.child_by_field_name("right")
    return f"{text(source, left)}, {text(source, right)}"


def is_plain_variable(source: bytes, node: Node) -> bool:
    """An identifier naming a variable (not `_`, not `__MODULE__`-style specials)."""
    if node.type != "identifier":
        return False
    name = text(source, node)
    return name != "_" and not (name.startswith("__") and name.endswith("__"))


def alone_on_line(source: bytes, node: Node) -> bool:
    """Nothing but indentation before `node` and nothing but spaces after it, on its lines."""
    before = source[source.rfind(b"\n", 0, node.start_byte) + 1 : node.start_byte]
    line_end = source.find(b"\n", node.end_byte)
    after = source[node.end_byte : len(source) if line_end < 0 else line_end]
    return not before.strip() and not after.strip()

"""Two collection steps where the second consumes the first: `inner` then `outer`.

The shapes, all handled alike so every fusion rule covers them:

    x |> Enum.filter(f) |> Enum.count()      # both piped
    Enum.filter(x, f) |> Enum.count()        # inner call starts the pipe
    Enum.count(Enum.filter(x, f))            # nested calls

A rule captures the *outer* call; `fused_pair` finds the inner one and `render` builds the replacement
call, with the subject first when the subject is explicit and without it when the result stays a pipe step.
"""

from __future__ import annotations

from dataclasses import dataclass

from lsp.idioms.base import Edit
from lsp.idioms.nodes import CallParts, Node, call_parts, is_pipe, text


@dataclass(frozen=True)
class FusedPair:
    source: bytes
    outer: CallParts
    inner: CallParts
    outer_extra: tuple[Node, ...]  # the outer call's arguments besides its input
    inner_extra: tuple[Node, ...]  # the inner call's arguments besides its input
    subject: Node | None  # the inner call's input when written as its first argument
    start: int
    end: int

    def arg(self, node: Node) -> str:
        return text(self.source, node)

    def call(self, module: str, name: str, args: list[str]) -> str:
        """`module.name(args)` with the subject first when it is explicit."""
        if self.subject is not None:
            args = [text(self.source, self.subject), *args]
        return f"{module}.{name}({', '.join(args)})"

    def replace_with(self, new_text: str) -> Edit:
        return Edit(self.start, self.end, new_text)


def fused_pair(source: bytes, outer_node: Node, inner_module: str | tuple[str, ...],
               inner_names: tuple[str, ...]) -> FusedPair | None:
    """The inner step feeding `outer_node` if it is a call of `inner_module`.`inner_names`."""
    modules = (inner_module,) if isinstance(inner_module, str) else inner_module
    outer = call_parts(source, outer_node)
    if outer is None or outer.do_block is not None or outer.keywords is not None:
        return None
    parent = outer_node.parent
    if is_pipe(parent) and parent.child_by_field_name("right") == outer_node:
        # The outer step is piped: its input is the pipe's left side.
        left = parent.child_by_field_name("left")
        if is_pipe(left):
            inner_node, subject, inner_piped = left.child_by_field_name("right"), None, True
        else:
            inner_node, subject, inner_piped = left, None, False
        outer_extra = outer.args
    elif outer.args:
        inner_node, subject, inner_piped = outer.args[0], None, False
        outer_extra = outer.args[1:]
        if is_pipe(inner_node):
            return None
    else:
        return None
    inner = call_parts(source, inner_node)
    if inner is None or inner.module not in modules or inner.name not in inner_names:
        return None
    if inner.do_block is not None or inner.keywords is not None:
        return None
    if inner_piped:
        inner_extra = inner.args
    else:
        if not inner.args:
            return None
        subject, inner_extra = inner.args[0], inner.args[1:]
    start = inner_node.start_byte if is_pipe(parent) and parent.child_by_field_name("right") == outer_node else outer_node.start_byte
    return FusedPair(source, outer, inner, tuple(outer_extra), tuple(inner_extra), subject, start, outer_node.end_byte)

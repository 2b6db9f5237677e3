"""`apply/2,3` with a literal argument list → a direct call.

Before:
    apply(Repo, :insert, [changeset, [returning: true]])
    apply(callback, [event])
After:
    Repo.insert(changeset, returning: true)
    callback.(event)
"""

from __future__ import annotations

import re

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.nodes import indentation, operator, reindent, replace
from lsp.idioms.single_helpers import RESERVED_WORDS, has_comment, is_piped, is_plain_variable

# A function name that can follow `Mod.` unquoted.
FUNCTION_NAME = re.compile(r"[a-z_][a-zA-Z0-9_]*[?!]?")


def list_contents(match: Match) -> str | None:
    """The argument list's elements as call arguments, or None when it is not a plain list.

    Laid out as `mix format` would: joined on one line, a multi-line last element hugged (re-indented
    to the call's line), and a trailing keyword list without its brackets.
    """
    literal = match.node("list")
    elements = literal.named_children
    # `[a | rest]` has an unknown length.
    if elements and elements[-1].type == "binary_operator" and operator(elements[-1]) == "|":
        return None
    if any(e.start_point.row != e.end_point.row for e in elements[:-1]):
        return match.source[literal.start_byte + 1 : literal.end_byte - 1].decode("utf-8")
    texts = [match.text(e) for e in elements]
    if elements:
        last = elements[-1]
        if last.type == "list" and [c.type for c in last.named_children] == ["keywords"]:
            last = last.named_children[0]
        call_indent = indentation(match.source, match.node("finding").start_byte)
        texts[-1] = reindent(match.text(last), indentation(match.source, last.start_byte), call_indent)
    return ", ".join(texts)


def rewrite(match: Match) -> list[Edit] | None:
    call = match.node("finding")
    if has_comment(call) or is_piped(call):
        return None
    contents = list_contents(match)
    if contents is None:
        return None
    fun = match.get("fun")
    if fun is not None:
        if not is_plain_variable(match.source, fun):
            return None
        return [replace(call, f"{match.text(fun)}.({contents})")]
    module, function = match.node("module"), match.text("function")[1:]
    if not FUNCTION_NAME.fullmatch(function) or function in RESERVED_WORDS:
        return None
    dynamic_module = module.type == "identifier" and match.text(module) != "__MODULE__"
    if dynamic_module and not is_plain_variable(match.source, module):
        return None
    return [replace(call, f"{match.text(module)}.{function}({contents})")]


RULE = Rule(
    id="apply_literal_args",
    title="apply(Mod, :fun, [a]) → Mod.fun(a)",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "apply(Repo, :insert, [changeset, [returning: true]])",
            "Repo.insert(changeset, returning: true)",
        ),
        Example("result = apply(callback, [event, state])", "result = callback.(event, state)"),
        Example("apply(:erlang, :phash2, [key])", ":erlang.phash2(key)"),
        Example("apply(__MODULE__, :run!, [])", "__MODULE__.run!()"),
        Example(
            "apply(Mod, :build, [\n  fn x ->\n    x\n  end\n])",
            "Mod.build(fn x ->\n  x\nend)",
        ),
        Example(
            "def dispatch(handler, event) do\n  apply(handler, :handle, [\n    event,\n    %{}\n  ])\nend",
            "def dispatch(handler, event) do\n  handler.handle(event, %{})\nend",
        ),
        # A list built at run time, or an operator / computed function name.
        Example("apply(Mod, :fun, args)", None),
        Example("apply(Kernel, :+, [1, 2])", None),
        Example("apply(mod, fun, [a])", None),
        Example("apply(f, [a | rest])", None),
    ),
)

"""A `def`/`defp` whose whole body is a `try` → the implicit try of the function body.

Only the `do ... end` form: a keyword-form `def f, do: try(...)` is left alone.

Before:
    def fetch(url) do
      try do
        get!(url)
      rescue
        e in HTTPError -> {:error, e}
      end
    end
After:
    def fetch(url) do
      get!(url)
    rescue
      e in HTTPError -> {:error, e}
    end
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.flow_helpers import (
    can_shift,
    do_block_of,
    expressions,
    keeps_comments,
    positional_args,
    shift,
    sub_blocks,
    target_name,
    token,
)
from lsp.idioms.nodes import indentation

# A try with only `else` warns ("use case instead"); these make the implicit try worth it.
HANDLER_BLOCKS = frozenset({"rescue_block", "catch_block", "after_block"})


def rewrite(match: Match) -> list[Edit] | None:
    definition = match.node("finding")
    def_block = do_block_of(definition)
    if def_block is None or sub_blocks(def_block) or len(expressions(def_block)) != 1:
        return None
    attempt = expressions(def_block)[0]
    try_block = do_block_of(attempt)
    args, keywords = positional_args(attempt)
    if target_name(match.source, attempt) != "try" or try_block is None or args or keywords is not None:
        return None
    if not HANDLER_BLOCKS.intersection(b.type for b in sub_blocks(try_block)):
        return None
    def_do, def_end = token(def_block, "do"), token(def_block, "end")
    try_do, try_end = token(try_block, "do"), token(try_block, "end")
    if None in (def_do, def_end, try_do, try_end):
        return None
    old, new = indentation(match.source, attempt.start_byte), indentation(match.source, definition.start_byte)
    if not can_shift(match.source, try_block, old, new):
        return None
    inner = match.source[try_do.end_byte : try_end.start_byte].decode("utf-8")
    # The try's own `end` line disappears; the def's `end` keeps its place.
    edit = Edit(def_do.end_byte, def_end.start_byte, shift(inner, old, new))
    return [edit] if keeps_comments(match.source, definition, [edit]) else None


RULE = Rule(
    id="implicit_try",
    title="def … do try … end → implicit try",
    safety=Safety.SAFE,
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "def fetch(url) do\n"
            "  try do\n"
            "    get!(url)\n"
            "  rescue\n"
            "    e in HTTPError -> {:error, e}\n"
            "  end\n"
            "end",
            "def fetch(url) do\n"
            "  get!(url)\n"
            "rescue\n"
            "  e in HTTPError -> {:error, e}\n"
            "end",
        ),
        Example(
            "defmodule Worker do\n"
            "  defp run(job) when is_map(job) do\n"
            "    try do\n"
            "      # may throw\n"
            "      perform(job)\n"
            "\n"
            "      :ok\n"
            "    catch\n"
            "      :exit, reason ->\n"
            "        {:exit, reason}\n"
            "    after\n"
            "      cleanup(job)\n"
            "    end\n"
            "  end\n"
            "end",
            "defmodule Worker do\n"
            "  defp run(job) when is_map(job) do\n"
            "    # may throw\n"
            "    perform(job)\n"
            "\n"
            "    :ok\n"
            "  catch\n"
            "    :exit, reason ->\n"
            "      {:exit, reason}\n"
            "  after\n"
            "    cleanup(job)\n"
            "  end\n"
            "end",
        ),
        Example(
            "def safe_div(a, b) do\n  try do\n    a / b\n  rescue\n    ArithmeticError -> :infinity\n  else\n    result -> {:ok, result}\n  end\nend",
            "def safe_div(a, b) do\n  a / b\nrescue\n  ArithmeticError -> :infinity\nelse\n  result -> {:ok, result}\nend",
        ),
        # Something besides the try in the body, or a try with only an else.
        Example("def f do\n  setup()\n\n  try do\n    run()\n  rescue\n    _ -> :error\n  end\nend", None),
        Example("def f do\n  try do\n    run()\n  else\n    x -> x\n  end\nend", None),
        # A comment outside the try would be lost.
        Example("def f do\n  # guarded\n  try do\n    run()\n  rescue\n    _ -> :error\n  end\nend", None),
    ),
)

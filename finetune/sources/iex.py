"""IEx sessions as they appear in books and docs: detect them and split them into exercises.

A session is a run of prompts (`iex>`, `iex(1)>`, `iex(node@host)2>`), optional continuation lines
(`...>`, `...(1)>`) and the lines IEx printed back (results, `IO.puts` output, `** (Error)` reports).
The curriculum turns each (input, expected output) pair into an exercise, so the split keeps the
input exactly as typed (prompts removed, continuations joined with newlines) and the output verbatim.
"""

from __future__ import annotations

import re
import textwrap
from typing import NamedTuple

# `iex>`, `iex(1)>`, `iex(foo@host)3>`; the captured text is what the user typed after the prompt.
_PROMPT = re.compile(r"^\s*iex(?:\([^)\s]*\))?\d*>(?: |$)(.*)$")
_CONTINUATION = re.compile(r"^\s*\.\.\.(?:\([^)\s]*\))?\d*>(?: |$)(.*)$")


class IexStep(NamedTuple):
    """One prompt of a session: the code typed (continuations included) and what IEx printed."""

    input: str
    output: str


def is_prompt(line: str) -> bool:
    return _PROMPT.match(line) is not None


def is_continuation(line: str) -> bool:
    return _CONTINUATION.match(line) is not None


def is_iex_session(text: str) -> bool:
    """True when the first non-blank line is an IEx prompt (books put nothing before the prompt)."""
    for line in text.splitlines():
        if line.strip():
            return is_prompt(line)
    return False


def split_iex_session(text: str) -> list[IexStep]:
    """The (input, expected output) pairs of a session, in order.

    Lines before the first prompt are not part of any step and are dropped. Output keeps its own
    lines (multi-line structs, `IO.puts` text followed by `:ok`), dedented, without trailing blank
    lines. A prompt with no printed result (e.g. a definition whose result the author cut) gets "".
    """
    steps: list[IexStep] = []
    typed: list[str] | None = None
    printed: list[str] = []

    def close() -> None:
        if typed is not None:
            output = textwrap.dedent("\n".join(printed)).strip("\n")
            steps.append(IexStep("\n".join(typed).rstrip(), output.rstrip()))

    for line in text.splitlines():
        prompt = _PROMPT.match(line)
        if prompt:
            close()
            typed, printed = [prompt[1]], []
            continue
        continuation = _CONTINUATION.match(line)
        if continuation and typed is not None and not printed:
            typed.append(continuation[1])
            continue
        if typed is not None:
            printed.append(line.rstrip())
    close()
    return steps

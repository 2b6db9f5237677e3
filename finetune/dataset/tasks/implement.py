"""Stage 2 "implement from @doc/@spec": module context, @doc, @spec and the head are given; the body is
the answer.

Rendered as the completion the server asks for when the cursor sits on the empty first line of a
documented function: the prefix window starts at the function's first attribute, and the module line,
directives and sibling heads come from the server's own context extraction as context lines. The window
is placed there by the server's own `choose_windows`, with a budget that the attributes and head just fit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from finetune.dataset.tasks.common import (
    CHARS_PER_TOKEN,
    Definition,
    attributes_start,
    decode,
    definitions,
    document,
    fim_meta,
    make_sample,
    parsed_elixir,
    record_path,
)
from finetune.records import Record
from lsp.completion.assemble import build_prompt_input
from lsp.config import ContextSettings
from lsp.prompt import FimTokens, PromptInput, render_training_example


@dataclass(frozen=True)
class ImplementOptions:
    fim_tokens: FimTokens | None = None  # the instruction is the prefix; no suffix is shown by default
    require_doc: bool = False  # a @spec alone is enough unless this is set
    max_body_chars: int = 2000
    context: ContextSettings = field(default_factory=ContextSettings)


def implement_prompt_input(
    path: str, source: bytes, definition: Definition, attributes_start: int, settings: ContextSettings
) -> PromptInput:
    """The server's PromptInput for the buffer without the body, cursor on the empty first body line."""
    remaining = source[: definition.body_start] + source[definition.body_end :]
    doc = document(path, remaining.decode("utf-8"))
    window = decode(source, attributes_start, definition.body_start)
    # One-line anchor steps and a budget the attributes and head exactly fill, counted in characters (a
    # rounded token estimate could let a blank line above slip in); the context budget is scaled to match.
    fitted = replace(
        settings,
        anchor_lines=1,
        prefix_tokens=len(window),
        suffix_tokens=0,
        context_tokens=round(settings.context_tokens * CHARS_PER_TOKEN),
    )
    prompt_input, _windows = build_prompt_input(doc, path, definition.body_start, fitted, len)
    return prompt_input


def implement_samples(record: Record, options: ImplementOptions | None = None) -> Iterator[dict[str, Any]]:
    options = options or ImplementOptions()
    parsed = parsed_elixir(record)
    if parsed is None:
        return
    source, tree = parsed
    path = record_path(record)
    for definition in definitions(tree, source):
        info = definition.info
        if info is None or not (info.spec or info.doc) or (options.require_doc and not info.doc):
            continue
        if info.doc and ("@doc false" in info.doc or "@doc nil" in info.doc):
            continue
        body = decode(source, definition.body_start, definition.body_end)
        if len(body) > options.max_body_chars:
            continue
        start = attributes_start(source, definition)
        if start is None:
            continue
        prompt_input = implement_prompt_input(path, source, definition, start, options.context)
        prompt, target = render_training_example(prompt_input, body, options.fim_tokens)
        meta = {
            "function": f"{definition.name}/{definition.arity}",
            "has_doc": bool(info.doc),
            "has_spec": bool(info.spec),
            "fim": fim_meta(options.fim_tokens),
        }
        yield make_sample(2, "implement_from_doc", record.provenance, prompt=prompt.text, completion=target,
                          meta=meta)

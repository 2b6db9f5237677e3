"""Stage 2 fill-in-the-middle samples cut at syntax-tree boundaries, rendered as the server renders them.

A cut removes a middle from the file: a function body, the body of a block inside a function or a whole
multi-line statement, a single-line statement, or the rest of a line from a token boundary. The file
without its middle is what the user's buffer holds while the completion is requested, so the prompt is
built from exactly that text with the server's own `build_prompt_input` (windows, context lines), using a
character-based token count. Each cut gives a FIM sample and a prefix-only sample.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import tree_sitter

from finetune.dataset.tasks.common import (
    DEFAULT_FIM_TOKENS,
    Definition,
    body_lines,
    count_tokens_by_chars,
    decode,
    definitions,
    document,
    fim_meta,
    full_line_end,
    make_sample,
    parsed_elixir,
    record_path,
    seeded_random,
)
from finetune.records import Record
from lsp.completion.assemble import CountTokens, build_prompt_input
from lsp.config import ContextSettings
from lsp.idioms.nodes import call_parts, line_start
from lsp.prompt import FimTokens, PromptInput, render_training_example

CUT_KINDS = ("body", "block", "line", "rest_of_line")
# Node types whose named children are statements.
_STATEMENT_PARENTS = frozenset({"do_block", "else_block", "body"})


@dataclass(frozen=True)
class FimOptions:
    fim_tokens: FimTokens | None = DEFAULT_FIM_TOKENS
    prefix_only: bool = True  # also render each cut without FIM tokens (as served to SmolLM2-like models)
    kinds: tuple[str, ...] = CUT_KINDS
    per_kind: int = 2  # cuts of each kind per file
    max_middle_chars: int = 1500
    context: ContextSettings = field(default_factory=ContextSettings)


@dataclass(frozen=True)
class Cut:
    kind: str
    start: int  # byte range of the middle in the original source
    end: int
    node_type: str  # the syntax node the middle is aligned to


def _alone_on_lines(source: bytes, node: tree_sitter.Node) -> bool:
    """Nothing but indentation before the node on its first line, nothing but spaces after it on its last."""
    before = source[line_start(source, node.start_byte) : node.start_byte]
    eol = source.find(b"\n", node.end_byte)
    after = source[node.end_byte : len(source) if eol < 0 else eol]
    return not before.strip() and not after.strip()


def _statements(definition: Definition) -> Iterator[tree_sitter.Node]:
    """Statements anywhere inside the definition's body (nested blocks and clauses included)."""
    for node in _statements_and_descendants(definition):
        parent = node.parent
        if node.type == "comment" or node.type.endswith("_block") or parent is None:
            continue
        if parent.type in _STATEMENT_PARENTS:
            yield node


def _inner_do_blocks(source: bytes, definition: Definition) -> Iterator[tuple[int, int, str]]:
    """Bodies of `if`/`case`/`with`/... blocks inside the definition, as (start, end) of whole lines."""
    for node in _statements_and_descendants(definition):
        parts = call_parts(source, node) if node.type == "call" else None
        if parts is None or parts.do_block is None:
            continue
        lines = body_lines(source, parts.do_block)
        if lines is not None:
            yield lines[0], lines[1], parts.do_block.type


def _statements_and_descendants(definition: Definition) -> Iterator[tree_sitter.Node]:
    stack = list(definition.node.named_children)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.named_children))


def _leaf_starts(node: tree_sitter.Node) -> list[int]:
    starts: list[int] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.child_count == 0:
            if current.start_byte > node.start_byte and not current.is_missing:
                starts.append(current.start_byte)
        else:
            stack.extend(current.children)
    return sorted(set(starts))


def candidate_cuts(source: bytes, tree: tree_sitter.Tree) -> dict[str, list[Cut]]:
    """Every AST-aligned cut of the file, by kind."""
    cuts: dict[str, list[Cut]] = {kind: [] for kind in CUT_KINDS}
    for definition in definitions(tree, source):
        cuts["body"].append(Cut("body", *definition.body, "do_block"))
        for start, end, node_type in _inner_do_blocks(source, definition):
            cuts["block"].append(Cut("block", start, end, node_type))
        for statement in _statements(definition):
            if not _alone_on_lines(source, statement):
                continue
            if statement.start_point[0] != statement.end_point[0]:
                start = line_start(source, statement.start_byte)
                cuts["block"].append(
                    Cut("block", start, full_line_end(source, statement.end_byte), statement.type)
                )
                continue
            cuts["line"].append(Cut("line", statement.start_byte, statement.end_byte, statement.type))
            for leaf_start in _leaf_starts(statement):
                cuts["rest_of_line"].append(Cut("rest_of_line", leaf_start, statement.end_byte, statement.type))
    bodies = {(cut.start, cut.end) for cut in cuts["body"]}
    # A body of one statement is already a "body" cut.
    cuts["block"] = [cut for cut in cuts["block"] if (cut.start, cut.end) not in bodies]
    for kind in cuts:
        cuts[kind] = sorted(set(cuts[kind]), key=lambda cut: (cut.start, cut.end))
    return cuts


def prompt_input_for_cut(
    path: str,
    source: bytes,
    cut: Cut,
    settings: ContextSettings | None = None,
    count: CountTokens = count_tokens_by_chars,
) -> PromptInput:
    """What the server builds when the user's buffer is the file without the middle, cursor at the cut."""
    remaining = source[: cut.start] + source[cut.end :]
    doc = document(path, remaining.decode("utf-8"))
    prompt_input, _windows = build_prompt_input(doc, path, cut.start, settings or ContextSettings(), count)
    return prompt_input


def choose_cuts(record: Record, cuts: dict[str, list[Cut]], options: FimOptions) -> list[Cut]:
    rng = seeded_random(record, "fim")
    chosen: list[Cut] = []
    for kind in options.kinds:
        pool = [c for c in cuts.get(kind, []) if 0 < c.end - c.start <= options.max_middle_chars]
        chosen.extend(rng.sample(pool, min(options.per_kind, len(pool))))
    return chosen


def fim_samples_for_cuts(
    record: Record, source: bytes, cuts: Sequence[Cut], options: FimOptions
) -> Iterator[dict[str, Any]]:
    path = record_path(record)
    variants: list[FimTokens | None] = []
    if options.fim_tokens is not None:
        variants.append(options.fim_tokens)
    if options.prefix_only:
        variants.append(None)
    for cut in cuts:
        middle = decode(source, cut.start, cut.end)
        prompt_input = prompt_input_for_cut(path, source, cut, options.context)
        for fim in variants:
            prompt, target = render_training_example(prompt_input, middle, fim)
            meta = {
                "cut": cut.kind,
                "node_type": cut.node_type,
                "start_byte": cut.start,
                "end_byte": cut.end,
                "fim": fim_meta(fim),
            }
            task = "fim" if fim is not None else "prefix_completion"
            yield make_sample(2, task, record.provenance, prompt=prompt.text, completion=target, meta=meta)


def fim_samples(record: Record, options: FimOptions | None = None) -> Iterator[dict[str, Any]]:
    """FIM and prefix-only samples for one Elixir file (nothing for other languages or broken files)."""
    options = options or FimOptions()
    parsed = parsed_elixir(record)
    if parsed is None:
        return
    source, tree = parsed
    cuts = choose_cuts(record, candidate_cuts(source, tree), options)
    yield from fim_samples_for_cuts(record, source, cuts, options)

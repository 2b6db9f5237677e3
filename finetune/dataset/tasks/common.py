"""What every task module shares: the sample dict, definition spans found with tree-sitter, and a Document
built from text so that prompts come from the server's own context extraction."""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import asdict, dataclass
from typing import Any

import tree_sitter

from finetune.records import Provenance, Record
from lsp.documents import Document
from lsp.idioms.nodes import DEF_KEYWORDS, block_body, call_parts, definition_signature, line_start
from lsp.prompt import PROMPT_FORMAT_VERSION, FimTokens, Prompt
from lsp.syntax.context import FunctionInfo, module_outline
from lsp.syntax.parser import make_parser

# Default FIM vocabulary for training: the tokens an adapter learns; serving reads them from the model.
DEFAULT_FIM_TOKENS = FimTokens("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
# Budgeting without a tokenizer: code averages about this many characters per token with BPE vocabularies.
CHARS_PER_TOKEN = 3.5


def count_tokens_by_chars(text: str) -> int:
    """A tokenizer-free token count for window budgets (the server uses its model's tokenizer)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def make_sample(
    stage: int,
    task: str,
    provenance: Provenance | dict[str, Any],
    *,
    prompt: str = "",
    completion: str = "",
    text: str | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One output row. `text` defaults to prompt + completion (what a causal LM sees end to end)."""
    return {
        "stage": stage,
        "task": task,
        "prompt": prompt,
        "completion": completion,
        "text": prompt + completion if text is None else text,
        "prompt_format": PROMPT_FORMAT_VERSION,
        "provenance": provenance if isinstance(provenance, dict) else asdict(provenance),
        "meta": meta or {},
    }


def fim_meta(fim: FimTokens | None) -> dict[str, str] | None:
    """The control tokens a FIM prompt contains, so training can register them as special tokens."""
    return None if fim is None else {"prefix": fim.prefix, "suffix": fim.suffix, "middle": fim.middle}


def prompt_text(prompt: Prompt) -> str:
    return prompt.text


def record_path(record: Record) -> str:
    """The path shown in `# File:` headers: the path inside the package, else the package itself."""
    return record.provenance.path or record.provenance.package or "untitled.ex"


def seeded_random(record: Record, salt: str) -> random.Random:
    """Deterministic choices per record and task: rebuilding a dataset gives the same samples."""
    digest = hashlib.sha256(f"{record.id}:{salt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def parse(source: bytes) -> tree_sitter.Tree:
    return make_parser().parse(source)


def parsed_elixir(record: Record) -> tuple[bytes, tree_sitter.Tree] | None:
    """Source bytes and tree of an Elixir record that parses cleanly, else None: boundaries found in a
    broken tree are not trustworthy, so no task is cut from one."""
    if record.language != "elixir":
        return None
    source = record.text.encode("utf-8")
    tree = parse(source)
    return None if tree.root_node.has_error else (source, tree)


def has_errors(tree: tree_sitter.Tree) -> bool:
    return tree.root_node.has_error


def document(path: str, text: str) -> Document:
    return Document(f"file:///{path.lstrip('/')}", text)


@dataclass(frozen=True)
class Definition:
    """A def/defp/defmacro(p) clause with a `do ... end` body, located in bytes."""

    node: tree_sitter.Node
    kind: str
    name: str
    arity: int
    start: int  # start of the definition's first line
    end: int  # just past the definition's last line (its newline included)
    body_start: int  # start of the line after `do` ("" when the body is on the `do` line)
    body_end: int  # start of the line holding the closing `end`
    info: FunctionInfo | None  # doc/spec/head from the server's context extraction

    @property
    def body(self) -> tuple[int, int]:
        return self.body_start, self.body_end


def full_line_end(source: bytes, byte: int) -> int:
    """Just past the newline ending the line that holds `byte - 1` (or the end of the source)."""
    newline = source.find(b"\n", max(byte - 1, 0))
    return len(source) if newline < 0 else newline + 1


def body_lines(source: bytes, do_block: tree_sitter.Node) -> tuple[int, int] | None:
    """(start of the first body line, start of the `end` line) when `do` ends its line and `end` starts one."""
    first, last = do_block.children[0], do_block.children[-1]
    if first.type != "do" or last.type != "end" or last.is_missing:
        return None
    if any(child.type.endswith("_block") for child in do_block.named_children):
        return None  # else/rescue parts: the body is not one contiguous run of lines
    after_do = source.find(b"\n", first.end_byte)
    if after_do < 0 or source[first.end_byte : after_do].strip(b" \t\r"):
        return None
    end_line = line_start(source, last.start_byte)
    if source[end_line : last.start_byte].strip():
        return None
    body_start = after_do + 1
    if not block_body(do_block) or body_start >= end_line:
        return None
    return body_start, end_line


def definitions(tree: tree_sitter.Tree, source: bytes) -> list[Definition]:
    """Every definition with a multi-line `do ... end` body, any depth, in source order."""
    infos = {(f.start_line, f.name): f for m in module_outline(tree, source) for f in m.functions}
    found: list[Definition] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(reversed(node.named_children))
        if node.type != "call":
            continue
        parts = call_parts(source, node)
        if parts is None or parts.module is not None or parts.name not in DEF_KEYWORDS or parts.do_block is None:
            continue
        signature = definition_signature(source, node)
        lines = body_lines(source, parts.do_block)
        if signature is None or lines is None:
            continue
        row = node.start_point[0]
        found.append(
            Definition(
                node=node,
                kind=parts.name,
                name=signature[0],
                arity=signature[1],
                start=line_start(source, node.start_byte),
                end=full_line_end(source, node.end_byte),
                body_start=lines[0],
                body_end=lines[1],
                info=infos.get((row, signature[0])),
            )
        )
    return sorted(found, key=lambda d: d.start)


def attributes_start(source: bytes, definition: Definition) -> int | None:
    """Line start of the earliest of the definition's @doc / @spec (None when it has neither)."""
    info = definition.info
    if info is None:
        return None
    starts = []
    for attribute in (info.doc, info.spec):
        if attribute:
            found = source.rfind(attribute.encode("utf-8"), 0, definition.start)
            if found >= 0:
                starts.append(line_start(source, found))
    return min(starts) if starts else None




def decode(source: bytes, start: int, end: int) -> str:
    return source[start:end].decode("utf-8")

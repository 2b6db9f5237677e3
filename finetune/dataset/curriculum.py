"""Stage 3: a curriculum from books, in book order, with a difficulty score per section.

For every book section (a `Record` of kind "book" with `blocks`) this yields the section as causal text,
followed by instruction/answer pairs made from its examples:
- IEx sessions → "what does this evaluate to" (earlier lines of the session are given as context;
  run-specific outputs such as `#PID<...>` are skipped);
- an "Exercise" paragraph followed by code → the exercise as the task, the code as the answer;
- prose introducing code → "write" (the paragraph asks, the code answers), and code followed by prose →
  "explain" (the code asks, the paragraph answers).
Only Elixir that parses with tree-sitter (`lsp.syntax.parser`) is used; IEx inputs are parsed one
expression at a time.

Difficulty (0..1) is a weighted sum, each term in 0..1:
    0.35 * position       rank of the section in its book / (sections in the book - 1): books go from easy to hard
    0.30 * constructs     distinct language constructs in the section's code / 12 (capped): pipes, case, with,
                          receive, processes, macros, protocols, binaries, comprehensions, ...
    0.20 * code density   code characters / all characters
    0.15 * length         log(1 + characters) / log(1 + 20,000) (capped)
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import tree_sitter

from finetune.dataset.tasks.common import make_sample
from finetune.records import Block, Record
from finetune.sources.iex import IexStep, is_iex_session, split_iex_session
from lsp.idioms.nodes import call_parts, operator
from lsp.prompt import REWRITE_END, PromptInput, render_header
from lsp.syntax.parser import descendants, make_parser

WEIGHTS = {"position": 0.35, "constructs": 0.30, "code_density": 0.20, "length": 0.15}
CONSTRUCTS_FOR_FULL_SCORE = 12
LENGTH_FOR_FULL_SCORE = 20_000

# Outputs that differ between runs: not something to learn to predict.
_RUN_SPECIFIC = re.compile(r"#(?:PID|Reference|Port|Function)<")
_EXERCISE = re.compile(r"^\W*(?:exercises?|try it|your turn|challenge)\b", re.IGNORECASE)

# Calls and operators that mark a construct, by name.
_CALL_CONSTRUCTS = {
    "case": "case", "cond": "cond", "with": "with", "for": "comprehension", "receive": "receive",
    "try": "try", "if": "if", "unless": "if", "spawn": "processes", "spawn_link": "processes",
    "send": "processes", "quote": "macros", "unquote": "macros", "defmacro": "macros", "defmacrop": "macros",
    "defprotocol": "protocols", "defimpl": "protocols", "defstruct": "structs", "defmodule": "modules",
    "def": "functions", "defp": "functions", "defguard": "guards", "raise": "exceptions",
    "defexception": "exceptions", "use": "behaviours", "import": "directives", "alias": "directives",
    "require": "directives",
}  # fmt: skip
_MODULE_CONSTRUCTS = {
    "GenServer": "otp", "Supervisor": "otp", "Agent": "otp", "Task": "otp", "Registry": "otp",
    "Stream": "streams", "Process": "processes", "Kernel": "kernel", "Enum": "enum",
}  # fmt: skip
_NODE_CONSTRUCTS = {
    "anonymous_function": "anonymous functions", "sigil": "sigils", "bitstring": "binaries",
    "map": "maps", "struct": "structs", "keywords": "keyword lists", "tuple": "tuples",
    "unary_operator:&": "captures", "binary_operator:|>": "pipes", "binary_operator:when": "guards",
    "binary_operator:=": "pattern matching", "binary_operator:<>": "strings", "binary_operator:++": "lists",
    "unary_operator:^": "pin", "charlist": "charlists", "interpolation": "strings",
}  # fmt: skip


# -- parsing -----------------------------------------------------------------------------------------------


def parses(code: str, parser: tree_sitter.Parser | None = None) -> bool:
    tree = (parser or make_parser()).parse(code.encode("utf-8"))
    return bool(code.strip()) and not tree.root_node.has_error


def constructs_in(code: str, parser: tree_sitter.Parser | None = None) -> frozenset[str]:
    """The distinct constructs a piece of Elixir uses (see the tables above)."""
    source = code.encode("utf-8")
    tree = (parser or make_parser()).parse(source)
    found: set[str] = set()
    for node in descendants(tree.root_node):
        key = node.type
        if node.type in ("binary_operator", "unary_operator"):
            key = f"{node.type}:{operator(node)}"
        if key in _NODE_CONSTRUCTS:
            found.add(_NODE_CONSTRUCTS[key])
        if node.type == "call":
            parts = call_parts(source, node)
            if parts is None:
                continue
            if parts.module is None and parts.name in _CALL_CONSTRUCTS:
                found.add(_CALL_CONSTRUCTS[parts.name])
            elif parts.module in _MODULE_CONSTRUCTS:
                found.add(_MODULE_CONSTRUCTS[parts.module])
    return frozenset(found)


def iex_steps(session: str) -> list[IexStep]:
    """`iex>` inputs (with `...>` continuations) and the output printed after each (the books source's
    splitter, so collection and curriculum read sessions the same way)."""
    return split_iex_session(session)


def is_iex(block: Block) -> bool:
    return block.type == "code" and (block.language == "iex" or is_iex_session(block.text))


def is_elixir(block: Block) -> bool:
    return block.type == "code" and block.language in ("elixir", "") and not is_iex(block)


# -- difficulty ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difficulty:
    score: float
    position: float
    constructs: tuple[str, ...]
    code_density: float
    length: int

    def as_meta(self) -> dict[str, Any]:
        return {**asdict(self), "constructs": list(self.constructs)}


def _section_code(record: Record) -> list[str]:
    code = []
    for block in record.blocks:
        if is_iex(block):
            code.extend(step.input for step in iex_steps(block.text))
        elif is_elixir(block):
            code.append(block.text)
    return code


def difficulty(record: Record, position: float, parser: tree_sitter.Parser | None = None) -> Difficulty:
    parser = parser or make_parser()
    code = _section_code(record)
    constructs: set[str] = set()
    for piece in code:
        constructs |= constructs_in(piece, parser)
    text_chars = sum(len(block.text) for block in record.blocks) or len(record.text)
    code_chars = sum(len(block.text) for block in record.blocks if block.type == "code")
    density = code_chars / text_chars if text_chars else 0.0
    terms = {
        "position": min(max(position, 0.0), 1.0),
        "constructs": min(len(constructs) / CONSTRUCTS_FOR_FULL_SCORE, 1.0),
        "code_density": density,
        "length": min(math.log1p(text_chars) / math.log1p(LENGTH_FOR_FULL_SCORE), 1.0),
    }
    score = sum(WEIGHTS[name] * value for name, value in terms.items())
    return Difficulty(round(score, 4), round(terms["position"], 4), tuple(sorted(constructs)),
                      round(density, 4), text_chars)


# -- pairs ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    task: str  # iex_eval | exercise | write | explain
    instruction: str
    code: str  # code shown with the instruction ("" for none)
    answer: str


def _last_paragraph(text: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return paragraphs[-1] if paragraphs else ""


def _first_paragraph(text: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return paragraphs[0] if paragraphs else ""


def iex_pairs(block: Block, parser: tree_sitter.Parser) -> Iterator[Pair]:
    steps = iex_steps(block.text)
    for index, step in enumerate(steps):
        if not step.output or _RUN_SPECIFIC.search(step.output) or not parses(step.input, parser):
            continue
        transcript = []
        for earlier in steps[:index]:
            transcript.append(_iex_input(earlier.input))
            if earlier.output:
                transcript.append(earlier.output)
        transcript.append(_iex_input(step.input))
        yield Pair("iex_eval", "What does the last expression evaluate to in IEx?", "\n".join(transcript),
                   step.output)


def _iex_input(expression: str) -> str:
    first, *rest = expression.split("\n")
    return "\n".join([f"iex> {first}", *(f"...> {line}" for line in rest)])


def section_pairs(record: Record, parser: tree_sitter.Parser | None = None) -> Iterator[Pair]:
    """Instruction/answer pairs from one section's blocks, in block order."""
    parser = parser or make_parser()
    blocks: Sequence[Block] = record.blocks
    for index, block in enumerate(blocks):
        if is_iex(block):
            yield from iex_pairs(block, parser)
            continue
        if not is_elixir(block) or not parses(block.text, parser):
            continue
        code = block.text.strip("\n") + "\n"
        before = blocks[index - 1] if index > 0 and blocks[index - 1].type == "prose" else None
        after = blocks[index + 1] if index + 1 < len(blocks) and blocks[index + 1].type == "prose" else None
        asked = _last_paragraph(before.text) if before else ""
        if asked and _EXERCISE.match(asked):
            yield Pair("exercise", asked, "", code)
        elif asked:
            yield Pair("write", asked, "", code)
        explanation = _first_paragraph(after.text) if after else ""
        # A paragraph ending in ":" introduces the next block rather than explaining this one.
        if explanation and not _EXERCISE.match(explanation) and not explanation.endswith(":"):
            yield Pair("explain", "Explain what this code does.", code, explanation)


def _section_path(record: Record) -> str:
    meta = record.meta
    parts = [str(meta.get("book") or record.provenance.package or "book")]
    for key in ("chapter", "section"):
        if meta.get(key) not in (None, ""):
            parts.append(str(meta[key]))
    return "/".join(parts)


def _titles(record: Record) -> tuple[str, ...]:
    meta = record.meta
    titles = [str(meta[key]) for key in ("book", "chapter_title", "section_title") if meta.get(key)]
    return (" / ".join(titles),) if titles else ()


def render_pair(record: Record, pair: Pair) -> tuple[str, str]:
    """(prompt, completion): the book header as in completions, the task as a comment, then the code."""
    header = render_header(PromptInput(path=_section_path(record), prefix="", context_lines=_titles(record)))
    task = "".join(f"# {line}".rstrip() + "\n" for line in ["Task: " + pair.instruction.splitlines()[0],
                                                             *pair.instruction.splitlines()[1:]])
    code = pair.code if not pair.code or pair.code.endswith("\n") else pair.code + "\n"
    answer = pair.answer if pair.answer.endswith("\n") else pair.answer + "\n"
    return f"{header}{task}{code}# Answer:\n", f"{answer}{REWRITE_END}\n"


# -- the curriculum ----------------------------------------------------------------------------------------------


def _book_key(record: Record) -> str:
    return str(record.meta.get("book") or record.provenance.package)


def _order(record: Record) -> tuple[float, str]:
    order = record.meta.get("order")
    return (float(order) if isinstance(order, int | float) else math.inf, record.provenance.path)


def ordered_sections(records: Iterable[Record]) -> list[tuple[Record, float]]:
    """Book sections in book order (books by title), each with its position 0..1 in its book."""
    books: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if record.kind == "book":
            books[_book_key(record)].append(record)
    ordered: list[tuple[Record, float]] = []
    for title in sorted(books):
        sections = sorted(books[title], key=_order)
        last = max(len(sections) - 1, 1)
        ordered.extend((section, rank / last) for rank, section in enumerate(sections))
    return ordered


def curriculum(records: Iterable[Record], by: str = "book") -> Iterator[dict[str, Any]]:
    """Stage-3 rows: each section (causal text) then its pairs; `by="difficulty"` sorts sections easy→hard
    (stable, so book order breaks ties)."""
    parser = make_parser()
    sections = [(record, difficulty(record, position, parser)) for record, position in ordered_sections(records)]
    if by == "difficulty":
        sections.sort(key=lambda item: item[1].score)
    elif by != "book":
        raise ValueError(f"unknown curriculum order {by!r} (book | difficulty)")
    for index, (record, level) in enumerate(sections):
        meta = {
            "book": record.meta.get("book"),
            "chapter": record.meta.get("chapter"),
            "section": record.meta.get("section"),
            "order": record.meta.get("order"),
            "curriculum_index": index,
            "difficulty": level.as_meta(),
        }
        header = render_header(PromptInput(path=_section_path(record), prefix="", context_lines=_titles(record)))
        yield make_sample(3, "book_section", record.provenance, text=header + record.text, meta=meta)
        for pair in section_pairs(record, parser):
            prompt, completion = render_pair(record, pair)
            yield make_sample(3, pair.task, record.provenance, prompt=prompt, completion=completion, meta=meta)


# Elixir's own applications, in the order a learner meets them.
STDLIB_CHAPTERS = ("elixir", "eex", "ex_unit", "logger", "iex", "mix")
STDLIB_BOOK = "Elixir standard library documentation"


def docs_as_book(records: Iterable[Record]) -> Iterator[Record]:
    """Standard-library doc pages (`collect beam-docs`) as one more book for the curriculum: a chapter
    per application, a section per module. Their doctests become "what does this evaluate to" pairs,
    so stage 3 has material even without any book collected."""
    pages = sorted(
        (r for r in records if r.kind == "doc" and r.provenance.source == "beam_docs" and r.blocks),
        key=lambda r: (_chapter_rank(r.provenance.package), str(r.meta.get("module", ""))),
    )
    for order, page in enumerate(pages):
        app = page.provenance.package
        meta = {
            "book": STDLIB_BOOK,
            "chapter": _chapter_rank(app) + 1,
            "chapter_title": app,
            "section": order + 1,
            "section_title": str(page.meta.get("module", "")),
            "order": order,
        }
        yield Record("book", page.language, page.text, page.provenance, meta, page.blocks)


def _chapter_rank(app: str) -> int:
    return STDLIB_CHAPTERS.index(app) if app in STDLIB_CHAPTERS else len(STDLIB_CHAPTERS)

"""Stage 2 "write the test for": a function of `lib/foo.ex` and the ExUnit test(s) of `test/foo_test.exs`
(same project) that call it.

Rendered as the completion the server asks for when the user writes tests with the library file open:
the function comes in as related code from the other file (a prompt snippet), the prefix is the test
module's head (use, aliases, setup) and the answer is the `test` block(s).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import tree_sitter

from finetune.dataset.tasks.common import (
    attributes_start,
    decode,
    definitions,
    full_line_end,
    make_sample,
    parse,
    record_path,
)
from finetune.records import Record
from lsp.idioms.nodes import call_parts, indentation, is_pipe, line_start
from lsp.prompt import PromptInput, Snippet, render_training_example
from lsp.syntax.context import module_outline
from lsp.syntax.parser import descendants

_LIB_SEGMENT = re.compile(r"(^|/)lib/")


def matching_test_path(lib_path: str) -> str | None:
    """`lib/a/b.ex` → `test/a/b_test.exs` (also under `apps/x/`); None for anything else."""
    if not lib_path.endswith(".ex"):
        return None
    matches = list(_LIB_SEGMENT.finditer(lib_path))
    if not matches:
        return None
    last = matches[-1]
    return f"{lib_path[: last.start()]}{last.group(1)}test/{lib_path[last.end() : -3]}_test.exs"


def _project_key(record: Record) -> tuple[str, str, str]:
    provenance = record.provenance
    return provenance.source, provenance.package, provenance.version


def pair_with_tests(records: Iterable[Record]) -> Iterator[tuple[Record, Record]]:
    """(lib file, its test file) for every library file whose test file is in the same project."""
    by_path: dict[tuple[tuple[str, str, str], str], Record] = {}
    libs: list[Record] = []
    for record in records:
        if record.language != "elixir":
            continue
        by_path[(_project_key(record), record.provenance.path)] = record
        if matching_test_path(record.provenance.path):
            libs.append(record)
    for lib in libs:
        test = by_path.get((_project_key(lib), matching_test_path(lib.provenance.path) or ""))
        if test is not None:
            yield lib, test


@dataclass(frozen=True)
class ExUnitTest:
    name: str
    start: int  # start of its first line
    end: int  # past its last line
    node: tree_sitter.Node


def exunit_tests(tree: tree_sitter.Tree, source: bytes) -> list[ExUnitTest]:
    """`test "..." do ... end` blocks at any depth (inside `describe` too)."""
    blocks = []
    for node in descendants(tree.root_node):
        parts = call_parts(source, node) if node.type == "call" else None
        if parts is None or parts.module is not None or parts.name != "test" or parts.do_block is None:
            continue
        if not parts.args or parts.args[0].type != "string":
            continue
        name = decode(source, parts.args[0].start_byte, parts.args[0].end_byte).strip('"')
        blocks.append(ExUnitTest(name, line_start(source, node.start_byte), full_line_end(source, node.end_byte), node))
    return blocks


def _calls(source: bytes, block: ExUnitTest, modules: set[str], imported: bool) -> set[tuple[str, int]]:
    """(name, arity) of calls in the test to the module (by full or aliased name, or bare when imported)."""
    found = set()
    for node in descendants(block.node):
        parts = call_parts(source, node) if node.type == "call" else None
        if parts is None:
            continue
        if parts.module in modules or (imported and parts.module is None):
            piped = is_pipe(node.parent) and node.parent.child_by_field_name("right") == node
            arity = len(parts.args) + (1 if parts.keywords is not None else 0) + (1 if piped else 0)
            found.add((parts.name, arity))
    return found


def _module_names(tree: tree_sitter.Tree, source: bytes) -> list[str]:
    return [module.name for module in module_outline(tree, source) if ", for:" not in module.name]


def _test_module_head_end(source: bytes, blocks: list[ExUnitTest], tree: tree_sitter.Tree) -> int:
    """Where the test module's head ends: the line of the first `test` or `describe`."""
    first = min(block.start for block in blocks)
    for node in descendants(tree.root_node):
        parts = call_parts(source, node) if node.type == "call" else None
        if parts is not None and parts.module is None and parts.name == "describe" and parts.do_block is not None:
            first = min(first, line_start(source, node.start_byte))
    return first


def write_test_samples(lib: Record, test: Record) -> Iterator[dict[str, Any]]:
    """One sample per public function of `lib` that some test of `test` calls."""
    lib_source, test_source = lib.text.encode("utf-8"), test.text.encode("utf-8")
    lib_tree, test_tree = parse(lib_source), parse(test_source)
    if lib_tree.root_node.has_error or test_tree.root_node.has_error:
        return
    lib_modules = _module_names(lib_tree, lib_source)
    blocks = exunit_tests(test_tree, test_source)
    if not lib_modules or not blocks:
        return
    module = lib_modules[0]
    names = {module, module.rsplit(".", 1)[-1]}
    imported = re.search(rb"^\s*import\s+" + re.escape(module.encode()) + rb"\b", test_source, re.M) is not None
    calls = [(block, _calls(test_source, block, names, imported)) for block in blocks]
    head_end = _test_module_head_end(test_source, blocks, test_tree)
    head = decode(test_source, 0, head_end)
    # Tests from inside `describe` come out at the module body's level, where the prefix stops.
    indent = indentation(test_source, head_end)
    seen: set[tuple[str, int]] = set()
    for definition in definitions(lib_tree, lib_source):
        signature = (definition.name, definition.arity)
        if definition.kind != "def" or signature in seen:
            continue
        seen.add(signature)
        matching = [block for block, called in calls if signature in called]
        if not matching:
            continue
        function_start = attributes_start(lib_source, definition) or definition.start
        function_text = textwrap.dedent(decode(lib_source, function_start, definition.end))
        snippet = Snippet(record_path(lib), f"defmodule {module} do\n{textwrap.indent(function_text, '  ')}end\n")
        answer = "\n".join(
            textwrap.indent(textwrap.dedent(decode(test_source, b.start, b.end)), indent) for b in matching
        )
        prompt, target = render_training_example(
            PromptInput(path=record_path(test), prefix=head, snippets=(snippet,)), answer, None
        )
        meta = {
            "function": f"{module}.{definition.name}/{definition.arity}",
            "tests": [block.name for block in matching],
            "test_path": test.provenance.path,
            "fim": None,
        }
        yield make_sample(2, "write_test", lib.provenance, prompt=prompt.text, completion=target, meta=meta)


def write_test_samples_for(records: Iterable[Record]) -> Iterator[dict[str, Any]]:
    """Every "write the test for" sample among a project's (or a whole corpus's) records."""
    for lib, test in pair_with_tests(records):
        yield from write_test_samples(lib, test)

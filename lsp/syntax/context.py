"""Elixir context at a cursor: enclosing modules and function, their directives, docs and specs.

Driven by `grammars/elixir/context.scm`. The server calls `extract_context` on every keystroke, so the
work is bounded: a query restricted to the bytes around the cursor finds the enclosing definitions, and a
query limited to direct children (`set_max_start_depth`) lists each enclosing module's body. Nothing is
cached across trees.

The document is often broken while the user types. When the cursor sits inside an ERROR node (or the tree
has errors and no definition encloses the cursor) the enclosing openers are recovered from indentation:
formatted Elixir puts `def ... do` one level deeper than its module and closes it with an `end` at the same
column. Definitions whose tree node is unusable are then rebuilt from their source line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import tree_sitter

from lsp.syntax.parser import load_query

MODULE_KEYWORDS = frozenset({"defmodule", "defprotocol", "defimpl"})
FUNCTION_KEYWORDS = frozenset(
    {"def", "defp", "defmacro", "defmacrop", "defguard", "defguardp", "defdelegate"}
)
DIRECTIVE_KEYWORDS = frozenset({"alias", "import", "use", "require"})
_KEYWORD_CAPTURE = {
    **dict.fromkeys(MODULE_KEYWORDS, "module"),
    **dict.fromkeys(FUNCTION_KEYWORDS, "function"),
    **dict.fromkeys(DIRECTIVE_KEYWORDS, "directive"),
}

# Words that say nothing about what a piece of code is about (for similarity ranking).
_STOP_WORDS = frozenset(
    {
        "do", "end", "fn", "when", "case", "cond", "if", "else", "unless", "with", "for", "receive", "after",
        "try", "catch", "rescue", "and", "or", "not", "in", "true", "false", "nil", "_", "__MODULE__",
        "quote", "unquote", "unquote_splicing", "defstruct", "defexception", "defoverridable",
        "doc", "moduledoc", "typedoc", "spec", "impl", "type", "typep", "opaque", "callback", "behaviour",
        *MODULE_KEYWORDS, *FUNCTION_KEYWORDS, *DIRECTIVE_KEYWORDS,
    }
)  # fmt: skip
# `MyApp.Accounts.User` stays whole; lowercase names keep a trailing ? or ! (but not the `!` of `!=`).
_IDENTIFIER = re.compile(r"(?<!\w)[A-Z]\w*(?:\.[A-Z]\w*)*|(?<!\w)[^\W\dA-Z]\w*(?:[?!](?!=))?")

# Indentation fallback: a line that starts with a definition keyword, and what it ends with.
_KEYWORD_LINE = re.compile(
    rb"(defmodule|defprotocol|defimpl|defmacrop?|defguardp?|defdelegate|defp?)(?=[ \t(])"
)
_OPENS_BLOCK = re.compile(rb"(?:^|[\s)])do[ \t]*(?:#[^\n]*)?\r?$")
_MID_BLOCK = re.compile(rb"(?:else|rescue|catch|after)\b")
_HEAD_END = re.compile(r"(?:\s+do\s*(?:#.*)?|\s*,\s*do:.*|\s*,\s*)$")
_LINE_NAME = re.compile(r"\S+\s+([^\s(),]+)")
_MAX_SCAN_LINES = 20_000
_NO_LIMIT = 1 << 30


@dataclass(frozen=True)
class FunctionInfo:
    kind: str  # def | defp | defmacro | defmacrop | defguard | defguardp | defdelegate
    name: str
    # Source text up to (not including) ` do` / `, do:`, e.g. "def add(a, b) when is_integer(a)".
    head: str
    start_line: int  # 0-based line of the def keyword
    end_line: int  # 0-based line where the definition ends
    doc: str | None  # whole `@doc ...` attribute directly preceding the def
    spec: str | None  # whole `@spec ...` attribute directly preceding the def


@dataclass(frozen=True)
class ModuleInfo:
    name: str  # as written after the keyword: "MyApp.Accounts.User", "Size, for: Map" for defimpl
    start_line: int
    end_line: int
    directives: tuple[str, ...]  # alias/import/use/require directly in the body, source text, in order
    functions: tuple[FunctionInfo, ...]  # def-likes directly in the body, one per clause, in order


@dataclass(frozen=True)
class ElixirContext:
    modules: tuple[ModuleInfo, ...]  # enclosing modules, outermost first
    function: FunctionInfo | None  # the innermost def enclosing the cursor


_EMPTY = ElixirContext(modules=(), function=None)


def extract_context(tree: tree_sitter.Tree, source: bytes, cursor_byte: int) -> ElixirContext:
    """Modules and function enclosing `cursor_byte`. Never raises: broken input gives a partial context."""
    try:
        return _Extractor(tree, source).context(max(0, min(cursor_byte, len(source))))
    except Exception:  # the user is typing: a missing context is better than a failed completion
        return _EMPTY


def module_outline(tree: tree_sitter.Tree, source: bytes) -> tuple[ModuleInfo, ...]:
    """Every module of the file (any depth), in source order. Never raises."""
    try:
        return _Extractor(tree, source).outline()
    except Exception:
        return ()


def identifiers(text: str) -> frozenset[str]:
    """Identifier-ish words of `text` (Module.Names whole), without Elixir keywords."""
    return frozenset(word for word in _IDENTIFIER.findall(text) if word not in _STOP_WORDS)


@lru_cache(maxsize=64)
def _dedent_pattern(indent: int) -> re.Pattern[bytes]:
    """A non-blank line indented by at most `indent` columns (compiled regexes only, no tree data)."""
    return re.compile(rb"^[ \t]{0,%d}(?=\S)" % indent, re.MULTILINE)


def _last_leaf(node: tree_sitter.Node) -> tree_sitter.Node:
    while node.child_count:
        node = node.child(node.child_count - 1)  # type: ignore[assignment]
    return node


def _closed_by_end(node: tree_sitter.Node) -> bool:
    """Whether the node ends with a real (not MISSING) `end` keyword."""
    leaf = _last_leaf(node)
    return leaf.type == "end" and not leaf.is_missing


def _encloses(node: tree_sitter.Node, cursor: int) -> bool:
    if node.start_byte < cursor < node.end_byte:
        return True
    # Typing at the very end of `def f(x), do: x` is still inside f; right after its `end` is not.
    return cursor == node.end_byte > node.start_byte and not _closed_by_end(node)


def _child_of_type(node: tree_sitter.Node, kind: str) -> tree_sitter.Node | None:
    for child in node.children:
        if child.type == kind:
            return child
    return None


def _is_do_keywords(node: tree_sitter.Node, src: bytes) -> bool:
    """`do: ...` inside a keyword list (`def f(x), do: x`)."""
    if node.type != "keywords":
        return False
    for pair in node.named_children:
        key = pair.child_by_field_name("key")
        if key is not None and src[key.start_byte : key.end_byte].strip() == b"do:":
            return True
    return False


def _has_body(call: tree_sitter.Node, src: bytes) -> bool:
    """A do_block, or `do:` in the arguments (a head like `def f(x)` has neither)."""
    for child in call.children:
        if child.type == "do_block":
            return True
        if child.type == "arguments":
            return any(_is_do_keywords(arg, src) for arg in child.named_children)
    return False


def _attribute_name(node: tree_sitter.Node, src: bytes) -> str | None:
    """`doc` for `@doc "..."`; None when the node is not a module attribute."""
    if node.type != "unary_operator":
        return None
    operator = node.child_by_field_name("operator")
    if operator is None or operator.type != "@":
        return None
    operand = node.child_by_field_name("operand")
    if operand is None:
        return None
    if operand.type == "call":
        operand = operand.child_by_field_name("target")
    if operand is None or operand.type != "identifier":
        return None
    return src[operand.start_byte : operand.end_byte].decode("utf-8", "replace")


def _head_name(head: tree_sitter.Node) -> tree_sitter.Node:
    """The node naming a definition in its head: `add` in `add(a, b) when is_integer(a)`."""
    while head.type == "binary_operator":
        operator = head.child_by_field_name("operator")
        if operator is None or operator.type != "when":
            return operator if operator is not None else head  # operator definitions: `def a <~> b`
        left = head.child_by_field_name("left")
        if left is None:
            return head
        head = left
    if head.type == "call":
        target = head.child_by_field_name("target")
        return target if target is not None else head
    return head


def _opens_block(stripped: bytes, word: str) -> bool:
    """A definition line that leaves a `do` block open (heads spanning lines count too)."""
    body = stripped.rstrip()
    if _OPENS_BLOCK.search(body):
        return True
    if b"do:" in body or body.endswith(b","):
        return False  # one-liner, or a keyword-style body on the next line
    # A head that continues on the next lines: `def f(\n a,\n b\n ) do`.
    return word in FUNCTION_KEYWORDS and body.count(b"(") > body.count(b")")


class _Extractor:
    """One extraction over one tree: holds the tree, the source and the compiled query."""

    def __init__(self, tree: tree_sitter.Tree, source: bytes) -> None:
        self.root = tree.root_node
        self.src = source
        self.query = load_query("context")
        self.has_error = self.root.has_error

    # -- helpers ---------------------------------------------------------------------------------------

    def text(self, node: tree_sitter.Node) -> str:
        return self.src[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def captures(
        self, node: tree_sitter.Node, byte_range: tuple[int, int] | None = None, depth: int | None = None
    ) -> dict[str, list[tree_sitter.Node]]:
        """Calls sorted by keyword into "module", "function" and "directive"; "broken.keyword" (definition
        keywords loose in an ERROR); "error"."""
        cursor = tree_sitter.QueryCursor(self.query)
        if byte_range is not None:
            cursor.set_byte_range(*byte_range)
        if depth is not None:
            cursor.set_max_start_depth(depth)
        found = cursor.captures(node)
        sorted_caps: dict[str, list[tree_sitter.Node]] = {"error": found.get("error", [])}
        for call in found.get("call", ()):
            target = call.child_by_field_name("target")
            kind = _KEYWORD_CAPTURE.get(self.keyword_text(target)) if target is not None else None
            if kind is not None:
                sorted_caps.setdefault(kind, []).append(call)
        broken = [k for k in found.get("broken.keyword", ()) if self.keyword_text(k) in _KEYWORD_CAPTURE]
        if broken:
            sorted_caps["broken.keyword"] = broken
        return sorted_caps

    def line_start(self, pos: int) -> int:
        return self.src.rfind(b"\n", 0, pos) + 1

    def line_end(self, pos: int) -> int:
        end = self.src.find(b"\n", pos)
        return len(self.src) if end < 0 else end

    def first_on_line(self, node: tree_sitter.Node) -> bool:
        start = node.start_byte
        return not self.src[self.line_start(start) : start].strip()

    def keyword_text(self, node: tree_sitter.Node) -> str:
        return self.src[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def dedent_after(self, pos: int, indent: int) -> tuple[int, re.Match[bytes] | None, bool]:
        """For the block opened on the line of `pos`: (end of that line or -1 on the last line, the next
        non-blank line indented by at most `indent`, whether that line is the block's own `end`)."""
        src = self.src
        eol = src.find(b"\n", pos)
        if eol < 0:
            return -1, None, False
        found = _dedent_pattern(indent).search(src, eol + 1)
        if found is None or found.end() - found.start() != indent or not src.startswith(b"end", found.end()):
            return eol, found, False
        after = src[found.end() + 3 : found.end() + 4]
        return eol, found, not after or not (after.isalnum() or after in b"_?!:")

    def block_end(self, pos: int, indent: int, row: int) -> tuple[int, int]:
        """(last line, byte offset where it ends) of the block opened on the line of `pos`, by indentation:
        the block runs to its `end`, or, when that is missing, to the last non-blank line before the code
        dedents."""
        src = self.src
        eol, found, own_end = self.dedent_after(pos, indent)
        if eol < 0:
            return row, len(src)
        if found is not None and own_end:
            return row + src.count(b"\n", pos, found.end()), self.line_end(found.end())
        stop = found.start() if found is not None else len(src)
        while stop > eol and src[stop - 1 : stop] in (b" ", b"\t", b"\r", b"\n"):
            stop -= 1
        return row + src.count(b"\n", pos, stop), stop

    def indent_encloses(self, pos: int, indent: int, cursor: int) -> bool:
        """Whether the block opened on the line of `pos` still runs at `cursor`, judged by indentation."""
        eol, found, own_end = self.dedent_after(pos, indent)
        if eol < 0 or cursor <= eol or found is None:
            return True
        return cursor < (found.end() + 3 if own_end else found.start())

    def anchor_doc_spec(self, node: tree_sitter.Node) -> tuple[str | None, str | None]:
        """@doc and @spec directly preceding the definition starting at `node` (comments and other
        attributes such as `@impl true` may sit in between; `@moduledoc` or any code stops the walk)."""
        anchor = node
        parent = anchor.parent
        # Climb out of wrappers the error recovery may have put around the keyword (e.g. `arguments`).
        while (
            parent is not None
            and parent.type not in ("do_block", "ERROR", "source", "body")
            and parent.start_byte == anchor.start_byte
        ):
            anchor = parent
            parent = anchor.parent
        doc: str | None = None
        spec: str | None = None
        sibling = anchor.prev_named_sibling
        while sibling is not None:
            if sibling.type != "comment":
                name = _attribute_name(sibling, self.src)
                if name is None or name == "moduledoc":
                    break
                if name == "doc" and doc is None:
                    doc = self.text(sibling)
                elif name == "spec" and spec is None:
                    spec = self.text(sibling)
            sibling = sibling.prev_named_sibling
        return doc, spec

    # -- definitions -------------------------------------------------------------------------------------

    def function_from_call(self, call: tree_sitter.Node, keyword: tree_sitter.Node) -> FunctionInfo:
        kind = self.keyword_text(keyword)
        args = _child_of_type(call, "arguments")
        if args is None or args.has_error or args.named_child_count == 0:
            return self.function_from_line(call.start_byte, kind, call)
        do_block = _child_of_type(call, "do_block")
        head_end = args.end_byte
        has_body = do_block is not None
        if do_block is None:
            # `def f(x), do: x`: the head ends before the keyword list that holds `do:`.
            named = args.named_children
            for index, child in enumerate(named):
                if _is_do_keywords(child, self.src):
                    head_end = named[index - 1].end_byte if index else child.start_byte
                    has_body = True
                    break
        name = self.text(_head_name(args.named_children[0]))
        head = self.src[call.start_byte : head_end].decode("utf-8", "replace").rstrip().rstrip(",")
        start_row = call.start_point.row
        end_row = call.end_point.row
        if self.has_error and (call.has_error or not has_body or do_block is not None):
            # Error recovery may have swallowed what follows a missing `end`, or left the body as loose
            # tokens after a bodyless-looking call: trust the indentation.
            by_indent = self.block_end(call.start_byte, call.start_point.column, start_row)[0]
            end_row = min(end_row, by_indent) if has_body else by_indent
        doc, spec = self.anchor_doc_spec(call)
        return FunctionInfo(kind, name, head, start_row, end_row, doc, spec)

    def function_from_line(self, pos: int, kind: str, anchor: tree_sitter.Node | None) -> FunctionInfo:
        """A definition rebuilt from its first source line (the tree has no usable node for its head).
        `anchor` is the node the definition starts with, if any, to find its @doc/@spec siblings."""
        row = self.src.count(b"\n", 0, pos)
        col = pos - self.line_start(pos)
        line = self.src[pos : self.line_end(pos)].decode("utf-8", "replace").rstrip()
        head = _HEAD_END.sub("", line)
        match = _LINE_NAME.match(head)
        name = match.group(1) if match else ""
        doc, spec = self.anchor_doc_spec(anchor) if anchor is not None else (None, None)
        return FunctionInfo(kind, name, head, row, self.block_end(pos, col, row)[0], doc, spec)

    def module_from_call(self, call: tree_sitter.Node, keyword: tree_sitter.Node) -> ModuleInfo:
        do_block = _child_of_type(call, "do_block")
        args = _child_of_type(call, "arguments")
        if do_block is None or args is None or not _closed_by_end(do_block):
            return self.module_from_line(keyword.start_byte)
        functions, directives = self.body_items(self.captures(do_block, depth=1), do_block.start_byte)
        return ModuleInfo(
            name=self.text(args),
            start_line=call.start_point.row,
            end_line=call.end_point.row,
            directives=directives,
            functions=functions,
        )

    def module_from_line(self, pos: int) -> ModuleInfo:
        """A module whose `end` is missing: its extent comes from indentation, its body from a query
        over that extent keeping the items at the body's indentation."""
        row = self.src.count(b"\n", 0, pos)
        col = pos - self.line_start(pos)
        line = self.src[pos : self.line_end(pos)].decode("utf-8", "replace").rstrip()
        parts = line.split(None, 1)
        name = _HEAD_END.sub("", parts[1]) if len(parts) > 1 else ""
        end_row, end_byte = self.block_end(pos, col, row)
        caps = self.captures(self.root, byte_range=(self.line_end(pos), end_byte))
        functions, directives = self.body_items(caps, self.line_end(pos), end_byte, col)
        return ModuleInfo(name, row, end_row, directives, functions)

    def body_items(
        self,
        caps: dict[str, list[tree_sitter.Node]],
        body_start: int,
        body_end: int | None = None,
        module_col: int | None = None,
    ) -> tuple[tuple[FunctionInfo, ...], tuple[str, ...]]:
        """Functions and directives of a module body from query captures.

        With `module_col` the captures come from a whole byte range (broken module) and only the items at
        the body's indentation (the shallowest one deeper than the module keyword) are kept.
        """
        items: list[tuple[int, str, tree_sitter.Node, tree_sitter.Node | None]] = []
        for capture in ("function", "directive"):
            for call in caps.get(capture, ()):
                keyword = call.child_by_field_name("target")
                if keyword is not None:
                    items.append((call.start_byte, capture, keyword, call))
        for keyword in caps.get("broken.keyword", ()):
            word = self.keyword_text(keyword)
            if word in MODULE_KEYWORDS or not self.first_on_line(keyword):
                continue
            capture = "function" if word in FUNCTION_KEYWORDS else "directive"
            items.append((keyword.start_byte, capture, keyword, None))
        if module_col is not None:
            end = len(self.src) if body_end is None else body_end
            items = [
                item
                for item in items
                if body_start <= item[0] < end
                and item[2].start_point.column > module_col
                and self.first_on_line(item[2])
            ]
            if items:
                body_col = min(item[2].start_point.column for item in items)
                items = [item for item in items if item[2].start_point.column == body_col]
        items.sort(key=lambda item: item[0])
        functions: list[FunctionInfo] = []
        directives: list[str] = []
        seen: set[int] = set()
        for start, capture, keyword, call in items:
            if start in seen:
                continue
            seen.add(start)
            if capture == "function":
                kind = self.keyword_text(keyword)
                if call is not None:
                    functions.append(self.function_from_call(call, keyword))
                else:
                    functions.append(self.function_from_line(start, kind, keyword))
            elif call is not None:
                directives.append(self.text(call))
            else:
                directives.append(self.src[start : self.line_end(start)].decode("utf-8", "replace").rstrip())
        return tuple(functions), tuple(directives)

    # -- entry points ----------------------------------------------------------------------------------

    def context(self, cursor: int) -> ElixirContext:
        caps = self.captures(self.root, byte_range=(max(cursor - 1, 0), cursor + 1))
        module_calls = [node for node in caps.get("module", ()) if self.encloses(node, cursor)]
        module_calls.sort(key=lambda node: node.start_byte)
        function_calls = [node for node in caps.get("function", ()) if self.encloses(node, cursor)]
        in_error = any(node.start_byte < cursor <= node.end_byte for node in caps.get("error", ()))

        modules: dict[int, ModuleInfo] = {}
        for call in module_calls:
            keyword = call.child_by_field_name("target")
            if keyword is not None:
                modules[call.start_point.row] = self.module_from_call(call, keyword)
        function: FunctionInfo | None = None
        if function_calls:
            call = max(function_calls, key=lambda n: n.start_byte)
            keyword = call.child_by_field_name("target")
            if keyword is not None:
                function = self.function_from_call(call, keyword)

        if in_error or (function is None and self.has_error):
            for pos, word in self.scan_openers(cursor):
                info = self.opener_info(pos, word, cursor)
                if isinstance(info, ModuleInfo):
                    modules.setdefault(info.start_line, info)
                elif info is not None and (function is None or info.start_line > function.start_line):
                    function = info  # the innermost of the tree's and the indentation's guesses
        ordered = tuple(modules[row] for row in sorted(modules))
        if function is not None and ordered:
            # Hand back the very object listed in the module, so callers may skip it by identity too.
            function = next((info for info in ordered[-1].functions if info == function), function)
        return ElixirContext(modules=ordered, function=function)

    def encloses(self, call: tree_sitter.Node, cursor: int) -> bool:
        if not _encloses(call, cursor):
            return False
        if not self.has_error or _child_of_type(call, "do_block") is None:
            return True
        # Error recovery may stretch a block over what follows a missing `end`: check the indentation.
        return self.indent_encloses(call.start_byte, call.start_point.column, cursor)

    def outline(self) -> tuple[ModuleInfo, ...]:
        caps = self.captures(self.root)
        found: dict[int, ModuleInfo] = {}
        for call in caps.get("module", ()):
            keyword = call.child_by_field_name("target")
            if keyword is not None and call.start_byte not in found:
                found[call.start_byte] = self.module_from_call(call, keyword)
        for keyword in caps.get("broken.keyword", ()):
            if self.keyword_text(keyword) in MODULE_KEYWORDS and self.first_on_line(keyword):
                found.setdefault(keyword.start_byte, self.module_from_line(keyword.start_byte))
        return tuple(found[start] for start in sorted(found))

    # -- indentation fallback --------------------------------------------------------------------------

    def scan_openers(self, cursor: int) -> list[tuple[int, str]]:
        """(byte offset, keyword) of the `def...do` / `defmodule...do` lines enclosing the cursor by
        indentation, innermost first. Walks up from the cursor; each non-blank line at indentation i means
        an enclosing opener must sit at a column < i (an `end` at i closes the opener at i)."""
        src = self.src
        start = self.line_start(cursor)
        end = cursor  # on the cursor's own line only the text before the cursor counts
        limit = _NO_LIMIT
        openers: list[tuple[int, str]] = []
        for _ in range(_MAX_SCAN_LINES):
            line = src[start:end]
            stripped = line.lstrip(b" \t")
            if stripped and not stripped.startswith(b"#"):
                indent = len(line) - len(stripped)
                if indent < limit:
                    match = _KEYWORD_LINE.match(stripped)
                    word = match.group(1).decode() if match else ""
                    if word and word != "defdelegate" and _opens_block(stripped, word):
                        openers.append((start + indent, word))
                        limit = indent
                    elif _MID_BLOCK.match(stripped):
                        limit = indent + 1  # `else`/`rescue` sit at the column of their own opener
                    else:
                        limit = indent
                    if limit == 0:
                        break
            if start == 0:
                break
            end = start - 1
            start = self.line_start(end)
        return openers

    def opener_info(self, pos: int, word: str, cursor: int) -> ModuleInfo | FunctionInfo | None:
        node = self.root.descendant_for_byte_range(pos, pos + len(word))
        keyword = node if node is not None and node.type == "identifier" else None
        call = keyword.parent if keyword is not None else None
        if call is not None and (call.type != "call" or call.child_by_field_name("target") != keyword):
            call = None
        if word in MODULE_KEYWORDS:
            if call is not None and keyword is not None and _child_of_type(call, "do_block") is not None:
                if not _encloses(call, cursor) and _closed_by_end(call):
                    return None  # the tree says this module closed before the cursor
                return self.module_from_call(call, keyword)
            return self.module_from_line(pos)
        if call is not None and keyword is not None:
            if _has_body(call, self.src) and not call.has_error and not _encloses(call, cursor):
                return None  # a complete definition that closed before the cursor
            return self.function_from_call(call, keyword)
        return self.function_from_line(pos, word, keyword)

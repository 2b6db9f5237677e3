"""Books as a data source: PDF, EPUB, Markdown and HTML → one `Record` per section.

Every format is first turned into a flat stream of events — `Heading(level, title)` and `Block`s (prose
or code) — and one shared step cuts that stream into sections: a level-1 heading starts a chapter, a
level-2 heading a section, deeper headings stay inside the section as Markdown sub-headings. Content
before a chapter's first section is that chapter's section 0; content before the first chapter is
chapter 0 (front matter). `meta["order"]` numbers the sections of a book in reading order, which the
curriculum keeps.

Where the structure comes from:
- Markdown (markdown-it-py): `#` = chapter, `##` = section. A text without any `#` heading is shifted so
  its shallowest heading level is the chapter. Fenced and indented code are code blocks; the fence's
  info string is a hint, the content decides when it is an IEx session.
- HTML (BeautifulSoup with the standard-library parser): `<h1>` = chapter, `<h2>` = section (same shift
  as Markdown); `<pre>` is code, with the language from `language-*`/`lang-*` classes or `data-lang`.
- EPUB (ebooklib): documents in spine order. A document named in the table of contents starts at its
  TOC depth (its shallowest heading is moved to that level, or the TOC title is used when it has no
  heading); documents outside a non-empty TOC continue the current chapter (their headings become
  sub-headings). Without a TOC, each document's shallowest heading is a chapter.
- PDF (pypdf): text in pypdf's layout mode, which keeps indentation (code detection relies on it).
  Chapters and sections come from the outline (bookmarks) when there is one — depth 1 = chapter, depth 2
  = section; a single top-level entry (the book's own title) is dropped. Without an outline, lines such
  as "Chapter 3", "Chapter 3: Processes" or "CHAPTER IV" start chapters and numbered lines such as
  "3.2 Linking Processes" start sections. pypdf's text extraction gives no font sizes or font names, so
  neither headings nor code can be recognised by typography: code lines are recognised by indentation
  and Elixir/Erlang/shell syntax (see `is_code_line`), page numbers and running headers that repeat on
  most pages are removed, and words hyphenated across lines are joined again. Multi-column layouts and
  scanned pages (no text layer) are not handled; a PDF without text is skipped with that reason.

A directory given to `collect` is one book made of its Markdown/HTML files in natural order (guides are
often a folder of chapter files); PDF and EPUB files inside it are books of their own.
"""

from __future__ import annotations

import posixpath
import re
import textwrap
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction
from ebooklib import ITEM_DOCUMENT, epub
from markdown_it import MarkdownIt
from markdown_it.token import Token
from pypdf import PageObject, PdfReader
from pypdf.errors import PdfReadError

from finetune.records import Block, Provenance, Record, Skipped
from finetune.sources import licence as licences
from finetune.sources.iex import is_continuation, is_iex_session, is_prompt

SOURCE = "books"
MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm", ".xhtml")
BOOK_SUFFIXES = (*MARKDOWN_SUFFIXES, *HTML_SUFFIXES, ".epub", ".pdf")


class BookError(Exception):
    """A book that cannot be read; its message becomes the `Skipped` reason."""


@dataclass(frozen=True)
class Heading:
    level: int  # 1 = chapter, 2 = section, deeper = sub-heading inside a section
    title: str


@dataclass(frozen=True)
class FileStart:
    """Marks where the next file of a multi-file book begins, so sections keep their own path."""

    path: str


Event = Heading | Block | FileStart


@dataclass(frozen=True)
class Book:
    title: str
    events: list[Event]


# --------------------------------------------------------------------------------------------------
# Public entry point


def collect(
    paths: Iterable[str | Path] | str | Path,
    *,
    licence: str = "",
    title: str | None = None,
    version: str = "",
    url: str = "",
) -> Iterator[Record | Skipped]:
    """One Record per section of each book under `paths` (files or directories).

    Books declare no SPDX id, so the licence is the caller's statement (`licence`, normalised to SPDX
    where known). `title` overrides the title read from the book (metadata, `<title>`, front matter,
    file name). A book that cannot be read yields `Skipped(path, reason)`.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    spdx = licences.normalise(licence)
    for path in map(Path, paths):
        for where, read in _book_readers(path):
            try:
                book = read()
                if title:
                    book = replace(book, title=title)
                records = sections(book, path=where.name, licence=spdx, version=version, url=url)
            except Exception as error:  # a malformed file must never stop the collection
                yield Skipped(str(where), _reason(error))
                continue
            if not records:
                yield Skipped(str(where), "no text found (scanned or empty book?)")
                continue
            yield from records


def _book_readers(path: Path) -> Iterator[tuple[Path, Callable[[], Book]]]:
    if path.is_dir():
        files = sorted(
            (p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path))), key=_natural_key
        )
        pages = [p for p in files if p.suffix.lower() in (*MARKDOWN_SUFFIXES, *HTML_SUFFIXES)]
        if pages:
            yield path, lambda: read_book_folder(path, pages)
        for file in files:
            if file.suffix.lower() in (".epub", ".pdf"):
                yield file, _reader_for(file)
    elif path.is_file():
        yield path, _reader_for(path)
    else:
        yield path, _raiser(BookError("no such file or directory"))


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _reader_for(path: Path) -> Callable[[], Book]:
    return lambda: read_book(path)


def _raiser(error: Exception) -> Callable[[], Book]:
    def read() -> Book:
        raise error

    return read


def _reason(error: Exception) -> str:
    if isinstance(error, BookError):
        return str(error)
    if isinstance(error, zipfile.BadZipFile):
        return f"not a valid EPUB (zip) file: {error}"
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text: {error}"
    return f"unreadable ({type(error).__name__}: {error})"


def read_book(path: Path) -> Book:
    """The events of one book file, by its suffix."""
    suffix = path.suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        text = _read_text(path)
        return Book(_front_matter_title(text) or path.stem, markdown_events(text))
    if suffix in HTML_SUFFIXES:
        html = _read_text(path)
        return Book(_html_title(html) or path.stem, html_events(html))
    if suffix == ".epub":
        return epub_book(path)
    if suffix == ".pdf":
        return pdf_book(path)
    raise BookError(f"unsupported book format {suffix or '(no suffix)'!r}")


def read_book_folder(folder: Path, files: Sequence[Path]) -> Book:
    events: list[Event] = []
    for file in files:
        name = file.relative_to(folder).as_posix()
        events.append(FileStart(name))
        try:
            text = _read_text(file)
        except (BookError, UnicodeDecodeError) as error:  # say which chapter file spoilt the book
            raise BookError(f"{name}: {_reason(error)}") from error
        events.extend(
            markdown_events(text) if file.suffix.lower() in MARKDOWN_SUFFIXES else html_events(text)
        )
    return Book(folder.name, events)


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:4096]:
        raise BookError("binary data where text was expected")
    return data.decode("utf-8-sig")


def _natural_key(path: Path) -> list[object]:
    # "ch2.md" before "ch10.md"
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.as_posix())]


# --------------------------------------------------------------------------------------------------
# Events → section records


def sections(book: Book, *, path: str, licence: str = "", version: str = "", url: str = "") -> list[Record]:
    """Cut a book's events into one Record per non-empty section, numbered in reading order."""
    records: list[Record] = []
    chapter, chapter_title, section, section_title = 0, "", 0, ""
    current_path = path
    pending: list[Block] = []

    def flush() -> None:
        blocks = merge_prose(pending)
        pending.clear()
        if not blocks:
            return
        records.append(
            Record(
                kind="book",
                language="markdown",
                text=render_section(chapter_title, section_title, blocks),
                provenance=Provenance(
                    source=SOURCE,
                    package=book.title,
                    version=version,
                    path=current_path,
                    licence=licence,
                    url=url,
                ),
                meta={
                    "book": book.title,
                    "chapter": chapter,
                    "chapter_title": chapter_title,
                    "section": section,
                    "section_title": section_title,
                    "order": len(records),
                },
                blocks=tuple(blocks),
            )
        )

    for event in book.events:
        if isinstance(event, FileStart):
            flush()
            current_path = event.path
        elif isinstance(event, Heading) and event.level <= 1:
            flush()
            chapter, chapter_title, section, section_title = chapter + 1, event.title, 0, ""
        elif isinstance(event, Heading) and event.level == 2:
            flush()
            section, section_title = section + 1, event.title
        elif isinstance(event, Heading):
            pending.append(Block("prose", f"{'#' * min(event.level, 6)} {event.title}"))
        else:
            pending.append(event)
    flush()
    return records


def merge_prose(blocks: Iterable[Block]) -> list[Block]:
    """Adjacent prose pieces become one prose block (paragraphs kept apart by a blank line)."""
    merged: list[Block] = []
    for block in blocks:
        if not block.text.strip():
            continue
        if block.type == "prose" and merged and merged[-1].type == "prose":
            merged[-1] = Block("prose", f"{merged[-1].text}\n\n{block.text}")
        else:
            merged.append(block)
    return merged


def render_section(chapter_title: str, section_title: str, blocks: Iterable[Block]) -> str:
    """A section as Markdown: its headings, prose as written, code fenced with a language tag."""
    parts = [f"# {chapter_title}"] if chapter_title else []
    if section_title:
        parts.append(f"## {section_title}")
    for block in blocks:
        parts.append(block.text if block.type == "prose" else fence(block.text, block.language))
    return "\n\n".join(parts) + "\n"


def fence(code: str, language: str) -> str:
    longest = max((len(run) for run in re.findall(r"^\s*(`{3,})", code, re.M)), default=2)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language or 'text'}\n{code}\n{ticks}"


# --------------------------------------------------------------------------------------------------
# Code: which language, and (for PDF text) which lines are code

_HINTS = {
    "elixir": "elixir", "ex": "elixir", "exs": "elixir",
    "erlang": "erlang", "erl": "erlang", "hrl": "erlang",
    "iex": "iex", "iex-session": "iex", "elixir-iex": "iex",
    "shell": "shell", "sh": "shell", "bash": "shell", "zsh": "shell", "console": "shell",
    "shell-session": "shell", "shellsession": "shell", "terminal": "shell",
    "text": "", "plain": "", "plaintext": "", "txt": "", "none": "",
}  # fmt: skip

_SHELL_LINE = re.compile(
    r"^\s*(\$|#)\s+\S|^\s*(mix|elixir|elixirc|iex\s+-S|erl|erlc|rebar3|cd|git|curl|apt(-get)?|brew|asdf"
    r"|sudo|npm|docker|export|ls|mkdir)\b(\s|$)"
)
_ELIXIR_SIGNS = [
    re.compile(p)
    for p in (
        r"^\s*(defmodule|defprotocol|defimpl)\s+[A-Z]",
        r"^\s*(def|defp|defmacro|defmacrop|defguard|defguardp|defdelegate|defn)\s+[a-z_][\w?!]*",
        r"^\s*(defstruct|defexception)\b",
        r"^\s*(use|alias|import|require)\s+:?[A-Z]",
        r"\|>",
        r"\bdo\s*$",
        r"\bdo:",
        r"^\s*end\b",
        r"\bfn\b.*->",
        r"%\{",
        r"^\s*@(doc|moduledoc|spec|type|typep|opaque|callback|impl|behaviour|moduletag)\b",
        r"\b[A-Z]\w*\.[a-z_]\w*[?!]?\(",
        r"~[rswSWcC][/({\[|\"']",
        r"<>",
    )
]
_ERLANG_SIGNS = [
    re.compile(p)
    for p in (
        r"^\s*-(module|export|import|record|spec|type|behaviou?r|define|include|include_lib)\(",
        r"\b[a-z]\w*:[a-z]\w*\(",  # lists:map( — Elixir calls use a dot
        r"\.\s*$",  # Erlang clauses end with a full stop
        r"^\s*[a-z]\w*\(.*\)\s*(when\s.*)?->",
        r"\bfun\s*\(",
        r"\bend\.\s*$",
        r";\s*$",
        r"\?MODULE\b",
        r"^\s*\d+>\s",  # erl shell prompt
    )
]


def code_language(code: str, hint: str = "") -> str:
    """The language of a code block: elixir | erlang | iex | shell, "" when unknown.

    An IEx session wins over a hint (books fence sessions as `elixir`); otherwise a known hint wins.
    Unknown hints naming another language (json, html, …) are kept, lower-cased.
    """
    if is_iex_session(code):
        return "iex"
    tag = hint.strip().strip("{}.").lower()
    if tag in _HINTS:
        if _HINTS[tag]:
            return _HINTS[tag]
    elif tag:
        return tag
    lines = [line for line in code.splitlines() if line.strip()]
    if lines and sum(bool(_SHELL_LINE.match(line)) for line in lines) * 2 >= len(lines):
        return "shell"
    elixir = sum(any(sign.search(line) for sign in _ELIXIR_SIGNS) for line in lines)
    erlang = sum(any(sign.search(line) for sign in _ERLANG_SIGNS) for line in lines)
    if elixir == erlang == 0:
        return ""
    return "elixir" if elixir >= erlang else "erlang"


_STRONG_CODE = re.compile(
    r"^(defmodule|defprotocol|defimpl)\s+[A-Z]"
    r"|^(def|defp|defmacro|defmacrop|defguard|defdelegate)\s+[a-z_][\w?!]*\s*[(,]|^(def|defp)\s+[a-z_][\w?!]*.*\bdo\b"
    r"|^(defstruct|defexception)\b"
    r"|^(use|alias|import|require)\s+:?[A-Z][\w.]*(,|$)"
    r"|^end\)?[,.]?$"
    r"|^\|>"
    r"|^@(doc|moduledoc|spec|type|typep|callback|impl|behaviour)\b"
    r"|^-(module|export|import|record|spec|type|behaviou?r|define|include|include_lib)\("
    r"|^[a-z_]\w*\(.*\)\s*(when\s.*)?->\s*$"
    r"|^(case|cond|with|receive|try|for|if|unless)\b.*\bdo$"
    r"|^(else|rescue|catch|after)$"
    r"|->\s*$"
)
_CODE_MARK = re.compile(
    r"\|>|<-|=>|::|%\{|~[rsw][/({\[|\"]|&\(|\bfn\b.*->|\bdo:|\bend\)?$|[{}\[\]]\s*$|;\s*$"
)
_PROSE_WORD = re.compile(r"[(\"'“‘]?[A-Za-z][a-z]*(['’][a-z]+)?[,.;:!?)\"'”’]*")


def is_prose_like(line: str) -> bool:
    """Four or more words, mostly ordinary words: a sentence (or part of one), not code."""
    words = line.split()
    if len(words) < 4:
        return False
    plain = sum(bool(_PROSE_WORD.fullmatch(word)) for word in words)
    return plain / len(words) >= 0.7


def is_code_line(line: str, indented: bool = False) -> bool:
    """Whether a line of extracted PDF text is code.

    Sure signs: IEx/shell prompts, Elixir/Erlang definitions and block keywords (`defmodule`, `def …
    do`, `end`, `-module(`), a leading `|>`. Otherwise a sentence-like line is prose, and a line with
    code punctuation (`|>`, `<-`, `%{`, `fn … ->`, `do:` …) or an indented one is code.
    """
    text = line.strip()
    if not text:
        return False
    if is_prompt(text) or is_continuation(text) or re.match(r"^\$ \S", text):
        return True
    if _STRONG_CODE.search(text):
        return True
    if is_prose_like(text):
        return False
    if indented or _CODE_MARK.search(text):
        return True
    symbols = sum(not (ch.isalnum() or ch.isspace()) for ch in text)
    return symbols / len(text) > 0.2


# --------------------------------------------------------------------------------------------------
# Markdown

_MARKDOWN = MarkdownIt("commonmark").enable("table")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(---|\.\.\.)[ \t]*\n", re.S)


def _front_matter_title(text: str) -> str:
    found = _FRONT_MATTER.match(text)
    if not found:
        return ""
    title = re.search(r"^title:\s*(.+?)\s*$", found[1], re.M)
    return title[1].strip("\"'") if title else ""


def markdown_events(text: str) -> list[Event]:
    """Headings and prose/code blocks of a Markdown text, in order."""
    front = _FRONT_MATTER.match(text)
    if front:  # blank the front matter out, keeping line numbers for token maps
        text = "\n" * front[0].count("\n") + text[front.end() :]
    lines = text.splitlines()
    tokens = _MARKDOWN.parse(text)
    events: list[Event] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.level != 0 or token.map is None:
            index += 1
            continue
        if token.type == "heading_open":
            title = tokens[index + 1].content.strip()
            events.append(Heading(int(token.tag[1:]), title))
            index += 3
            continue
        if token.type in ("fence", "code_block"):
            events.append(_markdown_code(token))
            index += 1
            continue
        if token.type == "hr" or (token.type == "html_block" and token.content.lstrip().startswith("<!--")):
            index += 1
            continue
        end = _closing_index(tokens, index)
        inner_code = [t for t in tokens[index + 1 : end] if t.type in ("fence", "code_block") and t.map]
        events.extend(_prose_around_code(lines, token.map[0], token.map[1], inner_code))
        index = end + 1
    return _with_chapter_level(events)


def _closing_index(tokens: Sequence[Token], start: int) -> int:
    if tokens[start].nesting != 1:
        return start
    depth = 0
    for index in range(start, len(tokens)):
        depth += tokens[index].nesting
        if depth == 0:
            return index
    return len(tokens) - 1


def _markdown_code(token: Token) -> Block:
    code = token.content.rstrip("\n")
    hint = token.info.split()[0] if token.type == "fence" and token.info.strip() else ""
    return Block("code", code, code_language(code, hint))


def _prose_around_code(lines: list[str], start: int, end: int, code_tokens: list[Token]) -> list[Block]:
    """A container (list, quote, paragraph …) as prose source lines, with its code blocks cut out."""
    blocks: list[Block] = []
    cursor = start
    for token in code_tokens:
        code_start, code_end = token.map
        blocks.append(_markdown_prose(lines[cursor:code_start]))
        blocks.append(_markdown_code(token))
        cursor = max(cursor, code_end)
    blocks.append(_markdown_prose(lines[cursor:end]))
    return [block for block in blocks if block.text]


def _markdown_prose(lines: list[str]) -> Block:
    return Block("prose", textwrap.dedent("\n".join(lines)).strip())


def _with_chapter_level(events: list[Event], top: int = 1) -> list[Event]:
    """Shift headings so the shallowest one is at `top`, unless the text already uses level `top`."""
    levels = [event.level for event in events if isinstance(event, Heading)]
    if not levels or top in levels:
        return events
    shift = top - min(levels)
    return [Heading(max(1, e.level + shift), e.title) if isinstance(e, Heading) else e for e in events]


# --------------------------------------------------------------------------------------------------
# HTML (and EPUB documents)

_HEADING_LEVEL = {f"h{n}": n for n in range(1, 7)}
_SKIPPED_TAGS = {
    "script", "style", "head", "nav", "noscript", "template", "svg", "math", "button", "form", "title",
}  # fmt: skip
_BLOCK_TAGS = {
    "html", "body", "main", "article", "section", "div", "header", "footer", "aside", "p", "blockquote",
    "figure", "figcaption", "dl", "dt", "dd", "details", "summary", "address", "center", "hr", "li",
}  # fmt: skip
_INLINE_CODE_TAGS = {"code", "kbd", "samp", "tt", "var"}
_NOT_TEXT = (Comment, Declaration, Doctype, ProcessingInstruction)


def _html_title(html: str) -> str:
    soup = BeautifulSoup(html, "html.parser")
    return soup.title.get_text(" ", strip=True) if soup.title else ""


def html_events(html: str | bytes) -> list[Event]:
    """Headings and prose/code blocks of an HTML (or XHTML) document, in order."""
    soup = BeautifulSoup(html, "html.parser")
    events: list[Event] = []
    _walk(soup.body or soup, events)
    return _with_chapter_level(events)


def _walk(node: Tag, events: list[Event]) -> None:
    inline: list[str] = []

    def flush() -> None:
        text = _squash("".join(inline))
        inline.clear()
        if text:
            events.append(Block("prose", text))

    for child in node.children:
        if isinstance(child, _NOT_TEXT):
            continue
        if isinstance(child, NavigableString):
            inline.append(str(child))
            continue
        if not isinstance(child, Tag) or child.name in _SKIPPED_TAGS:
            continue
        name = child.name
        if name in _HEADING_LEVEL:
            flush()
            events.append(Heading(_HEADING_LEVEL[name], _squash(_inline_text(child))))
        elif name == "pre" or (name == "code" and "\n" in child.get_text().strip()):
            flush()
            events.append(_html_code(child))
        elif name in ("ul", "ol"):
            flush()
            _html_list(child, events, ordered=name == "ol")
        elif name == "table":
            flush()
            events.append(Block("prose", _html_table(child)))
        elif name in _BLOCK_TAGS or child.find(
            ["pre", *_HEADING_LEVEL]
        ):  # inline tags wrapping blocks: bad markup
            flush()
            _walk(child, events)
        else:
            inline.append(_inline(child))
    flush()


def _inline_text(node: Tag) -> str:
    """The text inside a tag, with inline code in backticks."""
    return "".join(_inline(child) for child in node.children)


def _inline(node: object) -> str:
    """One inline node as Markdown-ish text."""
    if isinstance(node, _NOT_TEXT):
        return ""
    if isinstance(node, NavigableString):
        return str(node)
    if not isinstance(node, Tag) or node.name in _SKIPPED_TAGS:
        return ""
    if node.name == "br":
        return "\x00"  # a kept line break; whitespace squashing must not eat it
    if node.name == "img":
        return str(node.get("alt") or "")
    if node.name in _INLINE_CODE_TAGS:
        return f"`{node.get_text()}`"
    return _inline_text(node)


def _squash(text: str) -> str:
    lines = (re.sub(r"\s+", " ", line).strip() for line in text.split("\x00"))
    return "\n".join(line for line in lines if line)


def _html_code(node: Tag) -> Block:
    code = _pre_text(node)
    code = code[1:] if code.startswith("\n") else code  # HTML drops a newline right after <pre>
    code = textwrap.dedent(code.rstrip())
    hint = _language_hint(node)
    inner = node.find("code") if node.name == "pre" else None
    if not hint and isinstance(inner, Tag):
        hint = _language_hint(inner)
    return Block("code", code, code_language(code, hint))


def _pre_text(node: Tag) -> str:
    """A `<pre>` wrapping only a `<code>` gives the code's text: pretty-printers (ebooklib's writer
    among them) indent the whitespace between the two tags, which is not part of the code."""
    tags = [child for child in node.children if isinstance(child, Tag)]
    loose = "".join(
        str(c) for c in node.children if isinstance(c, NavigableString) and not isinstance(c, _NOT_TEXT)
    )
    if len(tags) == 1 and tags[0].name == "code" and not loose.strip():
        return tags[0].get_text()
    return node.get_text()


def _language_hint(node: Tag) -> str:
    for attribute in ("data-lang", "data-language", "data-code-language"):
        value = node.get(attribute)
        if isinstance(value, str) and value.strip():
            return value.strip()
    classes = node.get("class") or []
    for name in classes:
        for prefix in ("language-", "lang-", "highlight-source-", "highlight-", "brush:"):
            if name.startswith(prefix) and len(name) > len(prefix):
                return name[len(prefix) :]
    for name in classes:
        if name.lower() in _HINTS and _HINTS[name.lower()]:
            return name
    return ""


def _html_list(node: Tag, events: list[Event], ordered: bool) -> None:
    lines: list[str] = []
    items = [child for child in node.children if isinstance(child, Tag) and child.name == "li"]
    for number, item in enumerate(items, 1):
        marker = f"{number}. " if ordered else "- "
        inner: list[Event] = []
        _walk(item, inner)
        first = True
        for event in inner:
            if isinstance(event, Block) and event.type == "prose":
                text = event.text if not first else marker + event.text
                lines.append(textwrap.indent(text, "  ") if not first else text)
                first = False
            else:
                if lines:
                    events.append(Block("prose", "\n".join(lines)))
                    lines = []
                events.append(event)
    if lines:
        events.append(Block("prose", "\n".join(lines)))


def _html_table(node: Tag) -> str:
    rows = []
    for row in node.find_all("tr"):
        cells = [_squash(_inline_text(cell)) for cell in row.find_all(["th", "td"])]
        if cells:
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


# --------------------------------------------------------------------------------------------------
# EPUB


def epub_book(path: Path) -> Book:
    try:
        book = epub.read_epub(str(path), options={"ignore_ncx": False})
    except (zipfile.BadZipFile, KeyError, epub.EpubException) as error:
        raise BookError(f"not a valid EPUB: {error}") from error
    titles = book.get_metadata("DC", "title")
    title = titles[0][0].strip() if titles and titles[0][0] else path.stem
    toc = {}
    for level, entry_title, href in _flatten_toc(book.toc):
        toc.setdefault(_doc_path(href), (level, entry_title))
    events: list[Event] = []
    for idref, *rest in book.spine:
        linear = rest[0] if rest else "yes"
        item = book.get_item_with_id(idref)
        if (
            item is None
            or item.get_type() != ITEM_DOCUMENT
            or isinstance(item, epub.EpubNav)
            or linear == "no"
        ):
            continue
        doc_events = html_events(item.get_content())
        events.extend(_epub_levels(doc_events, toc.get(_doc_path(item.get_name())), has_toc=bool(toc)))
    return Book(title, events)


def _flatten_toc(entries: Iterable[object], level: int = 1) -> Iterator[tuple[int, str, str]]:
    for entry in entries:
        if isinstance(entry, tuple | list) and len(entry) == 2:
            head, children = entry
            href = getattr(head, "href", "") or getattr(head, "file_name", "")
            if href:
                yield level, str(getattr(head, "title", "") or ""), href
            yield from _flatten_toc(children, level + 1)
        else:
            href = getattr(entry, "href", "") or getattr(entry, "file_name", "")
            if href:
                yield level, str(getattr(entry, "title", "") or ""), href


def _doc_path(href: str) -> str:
    return posixpath.normpath(unquote(href.split("#", 1)[0]))


def _epub_levels(events: list[Event], toc_entry: tuple[int, str] | None, has_toc: bool) -> list[Event]:
    levels = [event.level for event in events if isinstance(event, Heading)]
    if toc_entry is None:
        # Not in a (non-empty) TOC: a continuation of the current chapter, or its own chapter if no TOC.
        top = 3 if has_toc else 1
    else:
        top = toc_entry[0]
        if not levels:
            return [Heading(top, toc_entry[1]), *events]
    if not levels:
        return events
    shift = top - min(levels)
    return [Heading(max(1, e.level + shift), e.title) if isinstance(e, Heading) else e for e in events]


# --------------------------------------------------------------------------------------------------
# PDF


def pdf_book(path: Path) -> Book:
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise BookError("encrypted PDF (needs a password)")
        pages = [_page_text(page) for page in reader.pages]
        outline = _pdf_outline(reader)
        title = str((reader.metadata or {}).get("/Title") or "").strip() or path.stem
    except PdfReadError as error:
        raise BookError(f"not a valid PDF: {error}") from error
    if not any(page.strip() for page in pages):
        raise BookError("PDF has no text layer (scanned?)")
    return Book(title, pdf_text_events(pages, outline))


def _page_text(page: PageObject) -> str:
    try:
        return page.extract_text(extraction_mode="layout")
    except Exception:  # layout mode fails on some fonts; plain mode loses indentation but keeps the text
        return page.extract_text() or ""


@dataclass(frozen=True)
class OutlineEntry:
    level: int  # 1 = chapter, 2 = section, deeper = sub-heading
    title: str
    page: int  # 0-based page index


def _pdf_outline(reader: PdfReader) -> list[OutlineEntry]:
    entries: list[OutlineEntry] = []

    def visit(items: list, level: int) -> None:
        for item in items:
            if isinstance(item, list):
                visit(item, level + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # a bookmark pointing nowhere: keep the others
                continue
            if page is not None and page >= 0:
                entries.append(OutlineEntry(level, str(item.title).strip(), page))

    try:
        visit(reader.outline, 1)
    except Exception:
        return []
    roots = [entry for entry in entries if entry.level == 1]
    if len(roots) == 1 and len(entries) > 1:  # a single root is the book itself
        entries = [replace(e, level=e.level - 1) for e in entries if e is not roots[0]]
    return entries


_CHAPTER_LINE = re.compile(r"^(?:chapter|CHAPTER|Chapter)\s+(\d+|[IVXLC]+)\b[.:\-–—]?\s*(.*)$")
_SECTION_LINE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?\.?\s+([A-Z][^.!?]{0,78}[^.!?,;:\s])$")


def pdf_text_events(pages: Sequence[str], outline: Sequence[OutlineEntry] = ()) -> list[Event]:
    """Events from the text of a PDF's pages; headings from the outline, else from the text itself."""
    page_lines = _strip_furniture([page.splitlines() for page in pages])
    headings = _place_outline(page_lines, outline) if outline else {}
    events: list[Event] = []
    run: list[tuple[str, bool]] = []  # (line, indented) since the last heading
    for page_index, lines in enumerate(page_lines):
        base = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
        if (page_index, -1) in headings:  # a bookmark whose title is not on its page: the page starts it
            _flush_pdf_run(run, events)
            events.append(headings[(page_index, -1)])
        consumed = -1  # a chapter title taken from a later line is not text any more
        for line_index, line in enumerate(lines):
            if line_index == consumed:
                continue
            if (page_index, line_index) in headings:
                _flush_pdf_run(run, events)
                events.append(headings[(page_index, line_index)])
                continue
            text = line.strip()
            if not outline and text:
                heading, title_offset = _heading_from_text(text, lines[line_index + 1 :])
                if heading:
                    _flush_pdf_run(run, events)
                    events.append(heading)
                    consumed = line_index + 1 + title_offset if title_offset is not None else -1
                    continue
            run.append((line[base:].rstrip(), len(line) - len(line.lstrip()) - base >= 2))
    _flush_pdf_run(run, events)
    return events


def _heading_from_text(text: str, following: list[str]) -> tuple[Heading | None, int | None]:
    """A "Chapter N[: Title]" or "N.M Title" line, and where in `following` its title sat if it
    continued on a later line ("Chapter 3" then "Processes")."""
    chapter = _CHAPTER_LINE.match(text)
    if chapter:
        rest = chapter[2].strip()
        if rest:
            return (Heading(1, rest) if _looks_like_title(rest) else None), None
        offset = next((i for i, line in enumerate(following) if line.strip()), None)
        if offset is not None and _looks_like_title(following[offset].strip()):
            return Heading(1, following[offset].strip()), offset
        return Heading(1, f"Chapter {chapter[1]}"), None
    section = _SECTION_LINE.match(text)
    if section and _looks_like_title(section[4]):
        return Heading(3 if section[3] else 2, section[4].strip()), None
    return None, None


def _looks_like_title(text: str) -> bool:
    """Short, capitalised, not a sentence, not code, and not a table-of-contents line ending in a page."""
    return (
        bool(text)
        and text[0].isupper()
        and len(text.split()) <= 10
        and not re.search(r"[.,;]$|\s\d+$", text)
        and not is_code_line(text)
    )


def _place_outline(
    page_lines: list[list[str]], outline: Sequence[OutlineEntry]
) -> dict[tuple[int, int], Heading]:
    """Where each bookmark's heading sits: the line that carries its title, else the top of its page."""
    placed: dict[tuple[int, int], Heading] = {}
    searched_from: dict[int, int] = {}
    for entry in outline:
        if entry.page >= len(page_lines):
            continue
        lines = page_lines[entry.page]
        wanted = _normal(entry.title)
        start = searched_from.get(entry.page, 0)
        found = next(
            (
                i
                for i in range(start, len(lines))
                if wanted and _normal(lines[i]) == wanted and (entry.page, i) not in placed
            ),
            None,
        )
        heading = Heading(entry.level, entry.title)
        if found is None:
            key = (entry.page, -1)
            if key in placed:  # two bookmarks on one page, neither title found: keep the first
                continue
            placed[key] = heading
        else:
            placed[(entry.page, found)] = heading
            searched_from[entry.page] = found + 1
    return placed


def _normal(text: str) -> str:
    return re.sub(r"\W+", " ", text).strip().lower()


_PAGE_NUMBER = re.compile(r"\d{1,4}|[ivxlc]{1,7}|[IVXLC]{1,7}|(page|p\.) ?\d+( of \d+)?", re.I)


def _strip_furniture(pages: list[list[str]]) -> list[list[str]]:
    """Drop page numbers and running headers/footers (top or bottom lines repeated on most pages)."""

    def edges(lines: list[str]) -> list[int]:
        filled = [i for i, line in enumerate(lines) if line.strip()]
        return sorted(set(filled[:2] + filled[-2:]))

    def key(line: str) -> str:
        return re.sub(r"\d+", "#", re.sub(r"\s+", " ", line.strip())).lower()

    counts: Counter[str] = Counter()
    for lines in pages:
        counts.update({key(lines[i]) for i in edges(lines)})
    threshold = max(3, len(pages) // 2 + 1)
    cleaned = []
    for lines in pages:
        drop = {
            i
            for i in edges(lines)
            if _PAGE_NUMBER.fullmatch(lines[i].strip())
            # a repeated edge line is a running header, unless it is code (pages ending in `end`)
            or (len(pages) >= 3 and counts[key(lines[i])] >= threshold and not is_code_line(lines[i]))
        }
        cleaned.append([line for i, line in enumerate(lines) if i not in drop])
    return cleaned


def _flush_pdf_run(run: list[tuple[str, bool]], events: list[Event]) -> None:
    """Classify the pending lines as code or prose and append the resulting blocks."""
    if not run:
        return
    kinds = _line_kinds(run)
    group: list[str] = []
    group_kind = ""
    for (line, _), kind in zip(run, kinds, strict=True):
        if kind != group_kind and group and group_kind != "blank":
            events.append(_pdf_block(group, group_kind))
        if kind != group_kind:
            group = []
        group_kind = kind
        group.append(line)
    if group and group_kind != "blank":  # blank lines only part paragraphs; they make no block
        events.append(_pdf_block(group, group_kind))
    run.clear()


def _line_kinds(run: list[tuple[str, bool]]) -> list[str]:
    """A kind per line — code, prose or blank; blank lines inside code stay in the code block."""
    kinds: list[str] = []
    in_session = False  # after an IEx prompt, non-sentence lines are its printed results
    for line, indented in run:
        text = line.strip()
        if not text:
            kinds.append("blank")
            in_session = False
            continue
        code = is_code_line(text, indented)
        if is_prompt(text):
            in_session = True
        elif in_session and not code:
            code = not is_prose_like(text)
            in_session = code
        kinds.append("code" if code else "prose")
    # A non-sentence line between two code lines (lost indentation) is code.
    filled = [i for i, kind in enumerate(kinds) if kind != "blank"]
    for before, here, after in zip(filled, filled[1:], filled[2:], strict=False):
        if (
            kinds[here] == "prose"
            and kinds[before] == kinds[after] == "code"
            and not is_prose_like(run[here][0])
        ):
            kinds[here] = "code"
    # Blank lines between two code lines belong to the code; other blanks separate prose paragraphs.
    for index, kind in enumerate(kinds):
        if kind == "blank":
            previous = next((kinds[i] for i in range(index - 1, -1, -1) if kinds[i] != "blank"), "")
            following = next((kinds[i] for i in range(index + 1, len(kinds)) if kinds[i] != "blank"), "")
            kinds[index] = "code" if previous == following == "code" else "blank"
    return kinds


def _pdf_block(lines: list[str], kind: str) -> Block:
    if kind == "code":
        code = textwrap.dedent("\n".join(lines)).strip("\n")
        return Block("code", code, code_language(code))
    return Block("prose", _join_prose_lines(lines))


def _join_prose_lines(lines: list[str]) -> str:
    text = ""
    for raw in lines:
        line = re.sub(r"\s+", " ", raw).strip()
        if not text:
            text = line
        elif re.search(r"[A-Za-z]-$", text) and line[:1].islower():  # "exam-" + "ple" → "example"
            text = text[:-1] + line
        else:
            text = f"{text} {line}"
    return text

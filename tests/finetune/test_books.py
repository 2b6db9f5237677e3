"""The books source on books built by the tests: Markdown, HTML, EPUB (ebooklib) and PDF (by hand)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from ebooklib import epub
from pypdf import PdfReader, PdfWriter

from finetune.records import Block, Record, Skipped
from finetune.sources import books
from finetune.sources.books import code_language, collect, is_code_line, pdf_text_events
from finetune.sources.iex import IexStep, is_iex_session, split_iex_session


def records_of(items: list[Record | Skipped]) -> list[Record]:
    assert not [item for item in items if isinstance(item, Skipped)], items
    return [item for item in items if isinstance(item, Record)]


def structure(records: list[Record]) -> list[tuple[int, str, int, str, int]]:
    return [
        (
            r.meta["chapter"],
            r.meta["chapter_title"],
            r.meta["section"],
            r.meta["section_title"],
            r.meta["order"],
        )
        for r in records
    ]


def code_blocks(record: Record) -> list[tuple[str, str]]:
    return [(b.language, b.text) for b in record.blocks if b.type == "code"]


# --------------------------------------------------------------------------------------------------
# IEx sessions and code recognition


def test_iex_session_splits_into_input_and_expected_output() -> None:
    session = """\
iex(1)> list = [1, 2, 3]
[1, 2, 3]
iex(2)> list
...(2)> |> Enum.map(fn x -> x * 2 end)
...(2)> |> Enum.sum()
12
iex(3)> IO.puts("hello")
hello
:ok
iex(4)> defmodule Empty do
...(4)> end
iex> %{a: 1}
%{
  a: 1
}
iex(node@host)5> 1 / 0
** (ArithmeticError) bad argument in arithmetic expression
"""
    assert is_iex_session(session)
    assert split_iex_session(session) == [
        IexStep("list = [1, 2, 3]", "[1, 2, 3]"),
        IexStep("list\n|> Enum.map(fn x -> x * 2 end)\n|> Enum.sum()", "12"),
        IexStep('IO.puts("hello")', "hello\n:ok"),
        IexStep("defmodule Empty do\nend", ""),
        IexStep("%{a: 1}", "%{\n  a: 1\n}"),
        IexStep("1 / 0", "** (ArithmeticError) bad argument in arithmetic expression"),
    ]


def test_text_before_the_first_prompt_is_not_a_step_and_plain_code_is_no_session() -> None:
    assert split_iex_session("Start IEx:\n  iex> 1 + 1\n  2\n") == [IexStep("1 + 1", "2")]
    assert not is_iex_session("x = 1\niex> x")
    assert split_iex_session("defmodule A do\nend") == []


@pytest.mark.parametrize(
    ("code", "hint", "language"),
    [
        ("defmodule Math do\n  def add(a, b), do: a + b\nend", "", "elixir"),
        ("list\n|> Enum.map(&(&1 * 2))", "", "elixir"),
        ("-module(math).\n-export([add/2]).\nadd(A, B) -> A + B.", "", "erlang"),
        ("lists:map(fun(X) -> X * 2 end, L).", "", "erlang"),
        ("$ mix new hello\n$ cd hello", "", "shell"),
        ("mix deps.get\nmix test", "", "shell"),
        ("iex> 1 + 1\n2", "elixir", "iex"),  # sessions fenced as elixir are still sessions
        ("iex(1)> :ok\n:ok", "", "iex"),
        ("x = 1", "erlang", "erlang"),  # an explicit tag wins otherwise
        ("mix new app", "console", "shell"),
        ('{"a": 1}', "json", "json"),
        ("just words here", "", ""),
        ("just words here", "text", ""),
    ],
)
def test_code_language(code: str, hint: str, language: str) -> None:
    assert code_language(code, hint) == language


@pytest.mark.parametrize(
    "line",
    [
        "defmodule Greeter do",
        'def hello(name), do: "Hello " <> name',
        "end",
        "|> Enum.filter(&even?/1)",
        "iex(3)> Enum.sum([1, 2])",
        "...> |> Kernel.+(1)",
        "$ mix test",
        '%{name: "José", age: 30}',
        "{:ok, pid} = GenServer.start_link(Stack, [])",
        "-module(stack).",
        "handle_call(pop, _From, [H | T]) ->",
        "case File.read(path) do",
    ],
)
def test_code_lines(line: str) -> None:
    assert is_code_line(line)


@pytest.mark.parametrize(
    "line",
    [
        "Elixir is a dynamic, functional language for building scalable applications.",
        "The |> operator passes the result of one expression to the next one.",
        "use the pipe operator when a chain of calls reads better from left to right",
        "Try it in the shell:",
        "Processes",
    ],
)
def test_prose_lines(line: str) -> None:
    assert not is_code_line(line)


# --------------------------------------------------------------------------------------------------
# Markdown

MARKDOWN_BOOK = """\
---
title: "Learning Elixir"
author: Someone
---

A preface before any chapter.

# Basic Types

Elixir has integers, floats and atoms.

## Atoms

An atom is a constant whose value is its own name:

```elixir
iex> :hello
:hello
iex> is_atom(:hello)
true
```

### Booleans

`true` and `false` are atoms too.

## Strings

Strings are UTF-8 binaries:

    "hello" <> " world"

1. Open a shell:

   ```sh
   $ iex
   ```

2. Concatenate.

# Modules

## Defining modules

```elixir
defmodule Math do
  def sum(a, b) do
    a + b
  end
end
```

And the same in Erlang:

```
-module(math).
-export([sum/2]).
sum(A, B) -> A + B.
```
"""


def test_markdown_book_sections_blocks_and_text(tmp_path: Path) -> None:
    path = tmp_path / "learning.md"
    path.write_text(MARKDOWN_BOOK, encoding="utf-8")
    records = records_of(list(collect(path, licence="mit", version="2024-01")))

    assert structure(records) == [
        (0, "", 0, "", 0),
        (1, "Basic Types", 0, "", 1),
        (1, "Basic Types", 1, "Atoms", 2),
        (1, "Basic Types", 2, "Strings", 3),
        (2, "Modules", 1, "Defining modules", 4),
    ]
    front, intro, atoms, strings, modules = records
    assert front.blocks == (Block("prose", "A preface before any chapter."),)
    assert all(r.kind == "book" and r.language == "markdown" for r in records)
    assert {r.meta["book"] for r in records} == {"Learning Elixir"}
    provenance = atoms.provenance
    assert (
        provenance.source,
        provenance.package,
        provenance.path,
        provenance.licence,
        provenance.version,
    ) == (
        "books",
        "Learning Elixir",
        "learning.md",
        "MIT",
        "2024-01",
    )

    assert [b.type for b in atoms.blocks] == ["prose", "code", "prose"]
    assert code_blocks(atoms) == [("iex", "iex> :hello\n:hello\niex> is_atom(:hello)\ntrue")]
    assert atoms.blocks[2].text == "### Booleans\n\n`true` and `false` are atoms too."
    assert split_iex_session(atoms.blocks[1].text)[1] == IexStep("is_atom(:hello)", "true")
    assert atoms.text == (
        "# Basic Types\n\n## Atoms\n\nAn atom is a constant whose value is its own name:\n\n"
        "```iex\niex> :hello\n:hello\niex> is_atom(:hello)\ntrue\n```\n\n"
        "### Booleans\n\n`true` and `false` are atoms too.\n"
    )

    # Indented code, and a fence nested in a list item, are code blocks between the prose.
    assert code_blocks(strings) == [("elixir", '"hello" <> " world"'), ("shell", "$ iex")]
    assert [b.type for b in strings.blocks] == ["prose", "code", "prose", "code", "prose"]
    assert strings.blocks[2].text == "1. Open a shell:"
    assert strings.blocks[4].text == "2. Concatenate."

    assert [language for language, _ in code_blocks(modules)] == ["elixir", "erlang"]
    assert "```elixir\ndefmodule Math do\n  def sum(a, b) do\n" in modules.text
    assert "```erlang\n-module(math)." in modules.text
    assert intro.text == "# Basic Types\n\nElixir has integers, floats and atoms.\n"
    assert Record.from_json(modules.to_json()) == modules


def test_markdown_without_level_one_headings_takes_its_top_level_as_chapters() -> None:
    events = books.markdown_events("## One\n\ntext\n\n### One.a\n\nmore\n\n## Two\n\nend of it\n")
    records = books.sections(books.Book("T", events), path="t.md")
    assert structure(records) == [(1, "One", 0, "", 0), (1, "One", 1, "One.a", 1), (2, "Two", 0, "", 2)]
    assert records[1].text == "# One\n\n## One.a\n\nmore\n"


def test_a_fence_containing_backticks_gets_a_longer_fence() -> None:
    assert books.fence('s = """\n```\n"""', "elixir") == '````elixir\ns = """\n```\n"""\n````'
    assert books.fence("raw", "") == "```text\nraw\n```"


def test_a_folder_of_markdown_chapters_is_one_book_in_natural_order(tmp_path: Path) -> None:
    guide = tmp_path / "guide"
    guide.mkdir()
    (guide / "ch10-otp.md").write_text("# OTP\n\n## GenServer\n\nServers.\n", encoding="utf-8")
    (guide / "ch2-basics.md").write_text("# Basics\n\nValues.\n", encoding="utf-8")
    (guide / "notes.txt").write_text("not a chapter", encoding="utf-8")
    records = records_of(list(collect(guide, licence="Apache-2.0")))
    assert structure(records) == [(1, "Basics", 0, "", 0), (2, "OTP", 1, "GenServer", 1)]
    assert [r.provenance.path for r in records] == ["ch2-basics.md", "ch10-otp.md"]
    assert {r.provenance.package for r in records} == {"guide"}


# --------------------------------------------------------------------------------------------------
# HTML

HTML_BOOK = """<!DOCTYPE html>
<html><head><title>Elixir in Pages</title><style>body { color: red }</style></head>
<body>
<nav><a href="#">Home</a></nav>
<h1>Processes</h1>
<p>Everything runs in <em>processes</em>, spawned with <code>spawn/1</code>.</p>
<h2>Spawning</h2>
<div class="example">
  <p>Spawn one:</p>
  <pre><code class="language-elixir">pid = spawn(fn -&gt; 1 + 2 end)
Process.alive?(pid)</code></pre>
  <pre class="highlight">iex(1)&gt; self()
#PID&lt;0.110.0&gt;</pre>
</div>
<ul><li>cheap</li><li>isolated<ul><li>own heap</li></ul></li></ul>
<script>var x = 1;</script>
<h2>Messages</h2>
<p>Send with <code>send/2</code>;<br>receive with <code>receive</code>.</p>
<pre data-lang="erlang">Pid ! hello.</pre>
<table><tr><th>Op</th><th>Meaning</th></tr><tr><td><code>send</code></td><td>post</td></tr></table>
</body></html>
"""


def test_html_book(tmp_path: Path) -> None:
    path = tmp_path / "pages.html"
    path.write_text(HTML_BOOK, encoding="utf-8")
    records = records_of(list(collect(path, licence="CC-BY-4.0")))
    assert structure(records) == [
        (1, "Processes", 0, "", 0),
        (1, "Processes", 1, "Spawning", 1),
        (1, "Processes", 2, "Messages", 2),
    ]
    intro, spawning, messages = records
    assert intro.provenance.package == "Elixir in Pages"
    assert intro.provenance.licence == "CC-BY-4.0"
    assert intro.blocks == (Block("prose", "Everything runs in processes, spawned with `spawn/1`."),)
    assert code_blocks(spawning) == [
        ("elixir", "pid = spawn(fn -> 1 + 2 end)\nProcess.alive?(pid)"),
        ("iex", "iex(1)> self()\n#PID<0.110.0>"),
    ]
    assert spawning.blocks[0].text == "Spawn one:"
    assert spawning.blocks[-1].text == "- cheap\n- isolated\n  - own heap"
    assert "var x" not in spawning.text and "Home" not in intro.text
    assert messages.blocks[0].text == "Send with `send/2`;\nreceive with `receive`."
    assert code_blocks(messages) == [("erlang", "Pid ! hello.")]
    assert messages.blocks[-1].text == "| Op | Meaning |\n| `send` | post |"


# --------------------------------------------------------------------------------------------------
# EPUB


def write_epub(path: Path) -> None:
    book = epub.EpubBook()
    book.set_identifier("test-book-1")
    book.set_title("Concurrent Elixir")
    book.set_language("en")
    chapter1 = epub.EpubHtml(title="Chapter 1", file_name="text/ch1.xhtml", lang="en")
    chapter1.content = (
        "<html><body><h1>Getting Going</h1><p>Install Elixir first.</p>"
        "<h2>First Steps</h2><p>Start a shell:</p><pre>iex&gt; 40 + 2\n42</pre>"
        "<h2>Modules</h2><pre><code class='lang-elixir'>defmodule A do\n  def a, do: 1\nend</code></pre>"
        "</body></html>"
    )
    # A page of chapter 1 in a file of its own, left out of the TOC: it continues the chapter.
    aside = epub.EpubHtml(title="Aside", file_name="text/aside.xhtml", lang="en")
    aside.content = "<html><body><h1>An aside</h1><p>Atoms are not garbage collected.</p></body></html>"
    # Chapter 2's file starts at h2: its TOC depth makes that a chapter, and its h3 a section.
    chapter2 = epub.EpubHtml(title="Chapter 2", file_name="text/ch2.xhtml", lang="en")
    chapter2.content = (
        "<html><body><h2>OTP</h2><p>Behaviours.</p><h3>GenServer</h3>"
        "<pre>-behaviour(gen_server).\ninit([]) -> {ok, []}.</pre></body></html>"
    )
    # No heading at all: the TOC entry's title names it.
    chapter3 = epub.EpubHtml(title="Chapter 3", file_name="text/ch3.xhtml", lang="en")
    chapter3.content = "<html><body><p>Releases are built with mix release.</p></body></html>"
    for item in (chapter1, aside, chapter2, chapter3):
        book.add_item(item)
    book.toc = [
        (
            epub.Section("Getting Going", "text/ch1.xhtml"),
            [epub.Link("text/ch1.xhtml#steps", "First Steps", "s1")],
        ),
        (epub.Section("OTP", "text/ch2.xhtml"), [epub.Link("text/ch2.xhtml#gs", "GenServer", "s2")]),
        epub.Link("text/ch3.xhtml", "Deployment", "c3"),
    ]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", chapter1, aside, chapter2, chapter3]
    epub.write_epub(str(path), book)


def test_epub_book_follows_spine_and_toc(tmp_path: Path) -> None:
    path = tmp_path / "concurrent.epub"
    write_epub(path)
    records = records_of(list(collect(path, licence="CC-BY-NC-4.0")))
    assert structure(records) == [
        (1, "Getting Going", 0, "", 0),
        (1, "Getting Going", 1, "First Steps", 1),
        (1, "Getting Going", 2, "Modules", 2),
        (2, "OTP", 0, "", 3),
        (2, "OTP", 1, "GenServer", 4),
        (3, "Deployment", 0, "", 5),
    ]
    assert {r.provenance.package for r in records} == {"Concurrent Elixir"}
    assert {r.provenance.path for r in records} == {"concurrent.epub"}
    _, steps, modules, otp, genserver, deployment = records
    assert code_blocks(steps) == [("iex", "iex> 40 + 2\n42")]
    assert code_blocks(modules) == [("elixir", "defmodule A do\n  def a, do: 1\nend")]
    assert modules.blocks[-1].text == "### An aside\n\nAtoms are not garbage collected."
    assert otp.blocks == (Block("prose", "Behaviours."),)
    assert code_blocks(genserver) == [("erlang", "-behaviour(gen_server).\ninit([]) -> {ok, []}.")]
    assert deployment.blocks == (Block("prose", "Releases are built with mix release."),)


# --------------------------------------------------------------------------------------------------
# PDF: written by hand — each line a text object at (x, y); Helvetica for prose, Courier for code.


def _pdf_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[tuple[int, str]]]) -> bytes:
    """A minimal valid PDF: one page per list of (indent, text) lines, top to bottom."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>")
    for index, lines in enumerate(pages):
        operations = []
        for line_number, (indent, text) in enumerate(lines):
            font = "F2" if indent else "F1"
            y = 740 - 14 * line_number
            operations.append(f"BT /{font} 10 Tf {72 + 6 * indent} {y} Td ({_pdf_string(text)}) Tj ET")
        stream = "\n".join(operations).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {6 + 2 * index} 0 R "
            "/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


PDF_PAGES = [
    [
        (0, "Programming Elixir Notes"),
        (0, "Chapter 1"),
        (0, "Pattern Matching"),
        (0, "In Elixir the equals sign is not an assignment but a match between both sides,"),
        (0, "and the left side is a pat-"),
        (0, "tern that binds variables."),
        (2, "iex(1)> {a, b} = {1, 2}"),
        (2, "{1, 2}"),
        (0, "1"),
    ],
    [
        (0, "Programming Elixir Notes"),
        (0, "1.1 Functions"),
        (0, "Named functions live inside modules, written like this:"),
        (2, "defmodule Times do"),
        (4, "def double(n) do"),
        (6, "n * 2"),
        (4, "end"),
        (2, "end"),
        (0, "Anonymous functions are values and can be passed around freely."),
        (0, "2"),
    ],
    [
        (0, "Programming Elixir Notes"),
        (0, "Chapter 2: Processes"),
        (0, "The Erlang side of a process looks like this in a module of its own:"),
        (2, "-module(ping)."),
        (2, "loop() -> receive ping -> loop() end."),
        (0, "3"),
    ],
]


def test_pdf_without_outline_uses_chapter_and_numbered_headings(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_bytes(make_pdf(PDF_PAGES))
    records = records_of(list(collect(path, title="Elixir Notes")))
    assert structure(records) == [
        (1, "Pattern Matching", 0, "", 0),
        (1, "Pattern Matching", 1, "Functions", 1),
        (2, "Processes", 0, "", 2),
    ]
    matching, functions, processes = records
    assert matching.provenance.package == "Elixir Notes"
    # Running header and page numbers gone; the hyphenated word joined again.
    assert "Programming Elixir Notes" not in "".join(r.text for r in records)
    assert matching.blocks[0] == Block(
        "prose",
        "In Elixir the equals sign is not an assignment but a match between both sides, "
        "and the left side is a pattern that binds variables.",
    )
    assert code_blocks(matching) == [("iex", "iex(1)> {a, b} = {1, 2}\n{1, 2}")]
    assert [b.type for b in functions.blocks] == ["prose", "code", "prose"]
    language, code = code_blocks(functions)[0]
    assert language == "elixir"
    assert [line.strip() for line in code.splitlines()] == [
        "defmodule Times do", "def double(n) do", "n * 2", "end", "end",
    ]  # fmt: skip
    assert code.splitlines()[1].startswith(" ")  # indentation survives extraction
    assert code_blocks(processes) == [("erlang", "-module(ping).\nloop() -> receive ping -> loop() end.")]


def test_pdf_outline_gives_the_structure(tmp_path: Path) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(PDF_PAGES))))
    root = writer.add_outline_item(title="Programming Elixir Notes", page_number=0)
    chapter = writer.add_outline_item(title="Matching", page_number=0, parent=root)
    writer.add_outline_item(title="Functions", page_number=1, parent=chapter)
    writer.add_outline_item(title="Processes", page_number=2, parent=root)
    writer.add_metadata({"/Title": "Notes From The Outline"})
    path = tmp_path / "outlined.pdf"
    with path.open("wb") as out:
        writer.write(out)
    records = records_of(list(collect(path)))
    # The single root is the book's own title; its children are the chapters. "1.1 Functions" is not
    # matched by text as the outline has the authority, so the line stays where the bookmark put it.
    assert [(r.meta["chapter_title"], r.meta["section_title"]) for r in records] == [
        ("Matching", ""),
        ("Matching", "Functions"),
        ("Processes", ""),
    ]
    assert {r.provenance.package for r in records} == {"Notes From The Outline"}
    assert "Chapter 1" in records[0].text  # text headings are left as prose when an outline exists


def test_pdf_text_events_keep_blank_lines_inside_code() -> None:
    page = "Define it:\n\n  defmodule A do\n\n    def a, do: 1\n  end\n\nThat is all there is to it here."
    events = pdf_text_events([page])
    assert events[1] == Block("code", "defmodule A do\n\n  def a, do: 1\nend", "elixir")
    assert (
        books.merge_prose(e for e in events if isinstance(e, Block))[-1].text
        == "That is all there is to it here."
    )


def test_running_headers_go_but_code_repeated_at_page_ends_stays() -> None:
    words = ["first", "second", "third"]
    pages = [
        f"Elixir Notes {n}\n\nThe {words[n - 1]} module is defined like this:\n\n  defmodule M{n} do\n  end\n{n}"
        for n in range(1, 4)
    ]
    events = pdf_text_events(pages)
    text = "\n".join(e.text for e in events if isinstance(e, Block))
    assert "Elixir Notes" not in text
    assert [e.text for e in events if isinstance(e, Block) and e.type == "code"] == [
        f"defmodule M{n} do\nend" for n in range(1, 4)
    ]


# --------------------------------------------------------------------------------------------------
# Bad inputs are skipped with a reason, and the others still come through


def test_malformed_books_are_skipped_with_reasons(tmp_path: Path) -> None:
    good = tmp_path / "good.md"
    good.write_text("# Fine\n\nText.\n", encoding="utf-8")
    not_pdf = tmp_path / "fake.pdf"
    not_pdf.write_text("hello, I am not a PDF", encoding="utf-8")
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(make_pdf(PDF_PAGES)[:300])
    blank_pdf = tmp_path / "blank.pdf"
    blank_pdf.write_bytes(make_pdf([[]]))
    not_zip = tmp_path / "fake.epub"
    not_zip.write_bytes(b"PK but not really a zip")
    empty_zip = tmp_path / "empty.epub"
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
    latin1 = tmp_path / "latin1.md"
    latin1.write_bytes("# Caf\xe9\n".encode("latin-1"))
    empty = tmp_path / "empty.md"
    empty.write_text("\n\n", encoding="utf-8")
    odd = tmp_path / "book.docx"
    odd.write_bytes(b"x")
    paths = [
        not_pdf,
        truncated,
        blank_pdf,
        not_zip,
        empty_zip,
        latin1,
        empty,
        odd,
        tmp_path / "missing.pdf",
        good,
    ]

    items = list(collect(paths))
    skipped = {Path(item.where).name: item.reason for item in items if isinstance(item, Skipped)}
    assert set(skipped) == {p.name for p in paths} - {"good.md"}
    assert "PDF" in skipped["fake.pdf"]
    assert "no text" in skipped["blank.pdf"]
    assert "EPUB" in skipped["fake.epub"] and "EPUB" in skipped["empty.epub"]
    assert "UTF-8" in skipped["latin1.md"]
    assert "no text" in skipped["empty.md"]
    assert "unsupported" in skipped["book.docx"]
    assert "no such file" in skipped["missing.pdf"]
    assert all(reason for reason in skipped.values())
    assert [r.meta["chapter_title"] for r in items if isinstance(r, Record)] == ["Fine"]


def test_a_bad_chapter_file_skips_its_folder_and_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "ch1.md").write_text("# One\n", encoding="utf-8")
    (tmp_path / "ch2.md").write_bytes(b"# Two \xff\n")
    [skipped] = list(collect(tmp_path))
    assert isinstance(skipped, Skipped)
    assert skipped.reason.startswith("ch2.md: not UTF-8 text")

"""Post-processing of raw model completions (Elixir ghost text), and the streaming stop check.

The model (a small one) often emits control tokens, runs into the lines after the cursor, loops, or keeps
going past the end of the block being edited. `postprocess` applies these rules, in order; each rule is a
small function of its own:

1. `strip_junk`: normalise `\\r\\n`/`\\r` to `\\n`, drop control characters, and cut at the first special
   token (`<|endoftext|>`, `<|im_end|>`, `<fim_middle>`, `<file_sep>`, ...): what follows one belongs to
   another document. Special tokens at the very start are dropped instead.
2. `first_line`: when the cursor is mid-line (`is_mid_line`) only the rest of the current line is offered.
3. `cut_at_block_end`: a small Elixir lexer (strings, heredocs, sigils, comments, atoms such as `:end` and
   keyword keys such as `do:` are not keywords) balances `do`/`fn` ... `end` and `()`, `[]`, `{}`, `<<>>`
   from the prefix's open blocks on. The completion is cut where it
   - closes something the prefix did not open, or with the wrong closer;
   - closes something the suffix already closes (the `)` of `foo(|)`, the `end` of the function whose `end`
     is below the cursor at the matching indentation, the `"` of a string the suffix closes);
   - has closed the block the cursor is in (its `end` and closers on the same line are kept, nothing after);
   - starts a line that dedents to the level of the cursor's `do`/`fn` line while balanced (a new `def`);
   - has two blank lines in a row.
4. `drop_suffix_repeats`: the whole completion equal to the start of the suffix gives nothing (checked
   again on the final text); otherwise the completion is cut at its first line that equals (stripped) the
   next non-empty line after the cursor.
5. `cut_repetitions`: a block of 1–4 lines repeated 3 times in a row, or a short pattern repeated within a
   line, is a generation loop: only its first occurrence is kept.
6. `trim_whitespace`: no trailing whitespace on any line or at the end; whitespace alone is nothing.
7. `guard_parse`: the document must not parse worse with the completion than without it (tree-sitter ERROR
   and MISSING nodes from the line of the cursor's innermost `do`/`fn` to the end of the suffix).
   Otherwise `do`/`fn` blocks the completion left open are closed (one `end` per block, at the
   indentation of the line that opened it), else the completion is cut to its longest whole-line prefix
   that does not parse worse, else nothing.

`make_stop_check` runs the line-level parts of rules 1–5 incrementally while tokens stream in, so that
generation stops as soon as nothing more could survive them.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import tree_sitter

from lsp.syntax.parser import count_errors, make_parser


@dataclass(frozen=True)
class PostprocessResult:
    text: str  # final completion text to insert at the cursor ("" = offer nothing)
    reason: str  # what decided the outcome: ok, empty, single-line, end-of-block, repeats-suffix, ...


# -- rule 1: junk ----------------------------------------------------------------------------------------

_SPECIAL_TOKEN = (
    r"<\|[A-Za-z][\w.\-▁]{0,48}\|>"  # <|endoftext|>, <|im_end|>, <|fim_middle|>, <|eot_id|>
    r"|<｜[^｜\n]{1,48}｜>"  # DeepSeek's full-width bars
    r"|<(?:fim[_-](?:prefix|suffix|middle|pad)|file_sep|filename|repo_name|reponame|gh_stars"
    r"|issue_(?:start|comment|closed)|jupyter_[a-z]+|empty_output|commit_[a-z]+|pad|unk|eos|bos)>"
    r"|</s>"
)
_SPECIAL_RE = re.compile(_SPECIAL_TOKEN)
_LEADING_SPECIAL_RE = re.compile(f"(?:{_SPECIAL_TOKEN})+")
# Longest special token the stop check must look back for across token boundaries.
_SPECIAL_LOOKBACK = 56
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\ufffd]")


def strip_junk(raw: str) -> str:
    """Rule 1: newlines normalised, control characters dropped, cut at the first special token."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    lead = _LEADING_SPECIAL_RE.match(text)
    if lead:
        text = text[lead.end() :]
    special = _SPECIAL_RE.search(text)
    if special:
        text = text[: special.start()]
    return _CONTROL_RE.sub("", text)


# -- rule 2: one line mid-line ---------------------------------------------------------------------------

# What may follow the cursor on its line without making it "mid-line": closers typed ahead by the editor.
_LINE_END_CLOSERS = frozenset(" \t\r)]}>\"',")


def is_mid_line(prefix: str, suffix: str) -> bool:
    """True when the cursor's line goes on after it with more than closing brackets, quotes and commas."""
    rest = suffix.split("\n", 1)[0]
    return any(ch not in _LINE_END_CLOSERS for ch in rest)


def first_line(text: str) -> str:
    """Rule 2: only the rest of the current line."""
    return text.split("\n", 1)[0]


# -- the lexer -------------------------------------------------------------------------------------------


class _Tok(NamedTuple):
    # open/close: block or bracket (text "do", "fn", "(", ..., "end", ")", ...); tok: any other token;
    # line: a line's first token (text: that token, start: line start, end: token start, indent: column);
    # litline: a line that starts inside a string; blank: an empty line (start: its start);
    # nl: a newline in code; strend: a string, heredoc or interpolation ends (indent: literal depth after).
    kind: str
    text: str
    start: int
    end: int
    indent: int = 0


class _Mode(NamedTuple):
    kind: str  # str | heredoc | interp | comment
    term: str = ""
    interp: bool = False
    depth: int = 0  # `{` nesting inside an interpolation
    bol: bool = False  # a heredoc line has only had whitespace so far


_IDENT_RE = re.compile(r"[^\W\d]\w*[?!]?")
_NUMBER_RE = re.compile(r"\d\w*(?:\.\d\w*)?")
_SIGIL_RE = re.compile(r"~(?:[a-z]|[A-Z][A-Z0-9]*)")
_SIGIL_CLOSE = {"/": "/", "|": "|", '"': '"', "'": "'", "(": ")", "[": "]", "{": "}", "<": ">"}
_OPS = (
    "<<<", ">>>", "<<~", "~>>", "<~>", "<|>", "|||", "&&&", "^^^", "~~~", "===", "!==", "...", "+++", "---",
    "<<", ">>", "<-", "->", "=>", "|>", "<>", "++", "--", "::", "==", "!=", "<=", ">=", "=~", "&&", "||",
    "..", "//", "**", "<~", "~>", "\\\\",
)  # fmt: skip
_OPS_BY_CHAR: dict[str, tuple[str, ...]] = {}
for _op in _OPS:
    _OPS_BY_CHAR[_op[0]] = (*_OPS_BY_CHAR.get(_op[0], ()), _op)
_ATOM_OP_RE = re.compile(
    "|".join(re.escape(op) for op in ("<<>>", "%{}", "{}", *_OPS)) + r"|[-+*/<>=!&|^~@.%]"
)
_LITERAL_SPECIALS: dict[tuple[str, bool], re.Pattern[str]] = {}


def _literal_specials(term: str, interp: bool) -> re.Pattern[str]:
    key = (term, interp)
    if key not in _LITERAL_SPECIALS:
        chars = "\\\\\n" + ("#" if interp else "") + (re.escape(term) if len(term) == 1 else "")
        _LITERAL_SPECIALS[key] = re.compile(f"[{chars}]")
    return _LITERAL_SPECIALS[key]


class _Lexer:
    """Just enough of Elixir's lexer to find blocks and brackets; resumable, so text can come in pieces.

    `feed` lexes what it can and keeps a tail whose meaning depends on what comes next (`do` vs `done`,
    `"` vs `\"\"\"`); `final=True` flushes it. Offsets are positions in everything fed so far.
    """

    def __init__(self) -> None:
        self._buf = ""
        self._base = 0
        self._modes: list[_Mode] = []
        self._line_start = 0
        self._line_has_tok = False
        self._line_literal = False
        self._last = ""
        self._out: list[_Tok] = []

    def clone(self) -> _Lexer:
        other = _Lexer.__new__(_Lexer)
        other.__dict__.update(self.__dict__)
        other._modes = list(self._modes)
        other._out = []
        return other

    @property
    def literal_depth(self) -> int:
        """Open strings, heredocs and interpolations (a comment is not one)."""
        return sum(1 for mode in self._modes if mode.kind != "comment")

    def in_literal(self) -> bool:
        return self.literal_depth > 0

    def drop_strings(self) -> None:
        """Forget unterminated one-line strings (a string still open at the end of the cursor's line)."""
        for k, mode in enumerate(self._modes):
            if mode.kind == "str":
                del self._modes[k:]
                return

    def feed(self, text: str, final: bool = False) -> list[_Tok]:
        buf = self._buf + text
        i, n = 0, len(buf)
        while i < n:
            mode = self._modes[-1] if self._modes else None
            if mode is None or mode.kind == "interp":
                j = self._code(buf, i, n, final, mode)
            elif mode.kind == "comment":
                j = buf.find("\n", i)
                if j < 0:
                    j = n
                else:
                    self._modes.pop()
            elif mode.kind == "heredoc":
                j = self._heredoc(buf, i, n, final, mode)
            else:
                j = self._string(buf, i, n, final, mode)
            if j is None:
                break
            i = j
        self._buf = buf[i:]
        self._base += i
        out, self._out = self._out, []
        return out

    # -- helpers ---------------------------------------------------------------------------------------

    def _emit(self, kind: str, text: str, start: int, end: int) -> None:
        if not self._line_has_tok:
            self._line_has_tok = True
            if not self._line_literal:
                self._out.append(_Tok("line", text, self._line_start, start, start - self._line_start))
        self._out.append(_Tok(kind, text, start, end))
        if text != "#":
            self._last = text

    def _newline(self, pos: int) -> None:
        if not self._line_has_tok and not self._line_literal:
            self._out.append(_Tok("blank", "", self._line_start, pos))
        if not self._modes:
            self._out.append(_Tok("nl", "\n", pos, pos + 1))
        self._line_start = pos + 1
        self._line_has_tok = False
        self._line_literal = self.in_literal()
        if self._line_literal:
            self._out.append(_Tok("litline", "", pos + 1, pos + 1))
        if self._modes and self._modes[-1].kind == "heredoc":
            self._modes[-1] = self._modes[-1]._replace(bol=True)

    def _end_literal(self, pos: int, term: str) -> None:
        self._modes.pop()
        self._out.append(_Tok("strend", term, pos, pos + len(term), self.literal_depth))

    # -- code ------------------------------------------------------------------------------------------

    def _code(self, buf: str, i: int, n: int, final: bool, mode: _Mode | None) -> int | None:
        c = buf[i]
        g = self._base + i
        if c == "\n":
            self._newline(g)
            return i + 1
        if c in " \t\r\f\v":
            return i + 1
        interp = mode is not None
        short = n - i < 3 and not final  # not enough lookahead for a 3-character token
        if c == "#":
            self._emit("tok", "#", g, g + 1)
            self._modes.append(_Mode("comment"))
            return i + 1
        if c in "\"'":
            if short:
                return None
            if buf.startswith(c * 3, i):
                self._emit("tok", c * 3, g, g + 3)
                self._modes.append(_Mode("heredoc", c * 3, True))
                return i + 3
            self._emit("tok", c, g, g + 1)
            self._modes.append(_Mode("str", c, True))
            return i + 1
        if c == "?":  # character literal: ?a, ?\n, ?#
            if short:
                return None
            j = min(i + (3 if buf.startswith("\\", i + 1) else 2), n)
            if "\n" in buf[i + 1 : j]:
                j = i + 1
            self._emit("tok", buf[i:j], g, self._base + j)
            return j
        if c == ":":
            return self._colon(buf, i, n, final, short)
        if c == "~" and not interp:
            if short:
                return None
            sigil = self._sigil(buf, i, n, final)
            if sigil != -1:
                return sigil
        if c.isalpha() or c == "_":
            return self._word(buf, i, n, final, interp)
        if c.isdigit():
            m = _NUMBER_RE.match(buf, i)
            assert m is not None
            j = m.end()
            if not final and (j == n or (j == n - 1 and buf[j] == ".")):
                return None
            self._emit("tok", m.group(), g, self._base + j)
            return j
        if c in "([{":
            if mode is not None:  # inside `#{...}`: only `{` nesting matters
                if c == "{":
                    self._modes[-1] = mode._replace(depth=mode.depth + 1)
                self._emit("tok", c, g, g + 1)
            else:
                self._emit("open", c, g, g + 1)
            return i + 1
        if c in ")]}":
            if mode is not None:
                if c == "}" and mode.depth == 0:
                    self._end_literal(g, c)
                    return i + 1
                if c == "}":
                    self._modes[-1] = mode._replace(depth=mode.depth - 1)
                self._emit("tok", c, g, g + 1)
            else:
                self._emit("close", c, g, g + 1)
            return i + 1
        if short:
            return None
        for op in _OPS_BY_CHAR.get(c, ()):
            if buf.startswith(op, i):
                kind = "tok"
                if not interp and op == "<<":
                    kind = "open"
                elif not interp and op == ">>":
                    kind = "close"
                self._emit(kind, op, g, g + len(op))
                return i + len(op)
        self._emit("tok", c, g, g + 1)
        return i + 1

    def _colon(self, buf: str, i: int, n: int, final: bool, short: bool) -> int | None:
        g = self._base + i
        if short:
            return None
        nxt = buf[i + 1] if i + 1 < n else ""
        if nxt == ":":
            self._emit("tok", "::", g, g + 2)
            return i + 2
        if nxt and nxt in "\"'":  # :"quoted atom"
            self._emit("tok", ":" + nxt, g, g + 2)
            self._modes.append(_Mode("str", nxt, True))
            return i + 2
        m = _IDENT_RE.match(buf, i + 1) if nxt else None
        if m is None and nxt:
            m = _ATOM_OP_RE.match(buf, i + 1)
        if m is not None:  # an atom: `:end` and `:do` are not keywords
            if m.end() == n and not final:
                return None
            self._emit("tok", buf[i : m.end()], g, self._base + m.end())
            return m.end()
        self._emit("tok", ":", g, g + 1)
        return i + 1

    def _sigil(self, buf: str, i: int, n: int, final: bool) -> int | None:
        """-1 when `~` starts an operator, not a sigil."""
        m = _SIGIL_RE.match(buf, i)
        if m is None:
            return -1
        j = m.end()
        if j >= n:
            return -1 if final else None
        delim = buf[j]
        if delim not in _SIGIL_CLOSE:
            return -1
        g = self._base + i
        # Lower-case sigils interpolate; upper-case ones take their content verbatim.
        interp = buf[i + 1].islower()
        if delim in "\"'":
            if n - j < 3 and not final:
                return None
            if buf.startswith(delim * 3, j):
                self._emit("tok", buf[i : j + 3], g, self._base + j + 3)
                self._modes.append(_Mode("heredoc", delim * 3, interp))
                return j + 3
        self._emit("tok", buf[i : j + 1], g, self._base + j + 1)
        self._modes.append(_Mode("str", _SIGIL_CLOSE[delim], interp))
        return j + 1

    def _word(self, buf: str, i: int, n: int, final: bool, interp: bool) -> int | None:
        g = self._base + i
        m = _IDENT_RE.match(buf, i)
        if m is None:
            self._emit("tok", buf[i], g, g + 1)
            return i + 1
        j = m.end()
        if j == n and not final:
            return None
        word = m.group()
        if j < n and buf[j] == ":":  # keyword key (`do:`, `end:`): opens and closes nothing
            if j + 1 == n and not final:
                return None
            if j + 1 == n or buf[j + 1] != ":":
                self._emit("tok", word + ":", g, self._base + j + 1)
                return j + 1
        # `foo.end` is a call; `, do` can only be the start of `, do:` being typed.
        if not interp and self._last != "." and not (word == "do" and self._last == ","):
            if word in ("do", "fn"):
                self._emit("open", word, g, self._base + j)
                return j
            if word == "end":
                self._emit("close", word, g, self._base + j)
                return j
        self._emit("tok", word, g, self._base + j)
        return j

    # -- literals --------------------------------------------------------------------------------------

    def _escape_or_interp(self, buf: str, i: int, j: int, n: int, final: bool, interp: bool) -> int | None:
        """Handle `\\` or `#` at j; None/j when the next character is not here yet."""
        if j + 1 >= n:
            if final:
                return n
            return j if j > i else None
        if buf[j] == "\\":
            if buf[j + 1] == "\n":
                self._newline(self._base + j + 1)
            return j + 2
        if interp and buf[j + 1] == "{":
            self._modes.append(_Mode("interp"))
            return j + 2
        return j + 1

    def _string(self, buf: str, i: int, n: int, final: bool, mode: _Mode) -> int | None:
        m = _literal_specials(mode.term, mode.interp).search(buf, i)
        if m is None:
            return n
        j = m.start()
        ch = buf[j]
        if ch == "\n":
            self._newline(self._base + j)
            return j + 1
        if ch in "\\#":
            return self._escape_or_interp(buf, i, j, n, final, mode.interp)
        self._end_literal(self._base + j, ch)
        return j + 1

    def _heredoc(self, buf: str, i: int, n: int, final: bool, mode: _Mode) -> int | None:
        if mode.bol:
            # The closing delimiter only counts as the first thing on its line.
            j = i
            while j < n and buf[j] in " \t":
                j += 1
            if j == n:
                return j
            if n - j < 3 and not final:
                return j if j > i else None
            if buf.startswith(mode.term, j):
                self._end_literal(self._base + j, mode.term)
                return j + 3
            self._modes[-1] = mode._replace(bol=False)
            return j
        m = _literal_specials("", mode.interp).search(buf, i)
        if m is None:
            return n
        j = m.start()
        if buf[j] == "\n":
            self._newline(self._base + j)
            return j + 1
        return self._escape_or_interp(buf, i, j, n, final, mode.interp)


# -- blocks ----------------------------------------------------------------------------------------------

_BLOCKS = frozenset({"do", "fn"})
_CLOSER_OF = {"(": ")", "[": "]", "{": "}", "<<": ">>"}
_OPENER_OF = {")": "(", "]": "[", "}": "{", ">>": "<<"}
# A line ending in one of these goes on in the next line (the next line keeps this one's logical indent).
_CONTINUATION_TAILS = frozenset(
    {",", "=", "<-", "|>", "<>", "++", "--", "&&", "||", "and", "or", "when", "::", "\\\\", "+", "-", "*",
     "/", "==", "!=", "===", "!==", "=~", "in", "|", "=>", "..", "<", ">", "<=", ">=", "not", "**"}
)  # fmt: skip
# Lines that belong to a block although they sit at the level of its opening line.
_BLOCK_LEVEL_HEADS = frozenset({"end", "else", "after", "rescue", "catch", ")", "]", "}", ">>", "#"})


def _closes(opener: str, closer: str) -> bool:
    return opener in _BLOCKS if closer == "end" else _OPENER_OF.get(closer) == opener


@dataclass(eq=False, frozen=True)
class _Entry:
    kind: str  # do | fn | ( | [ | { | <<
    indent: int  # logical indent of the line that opened it
    start: int


class _Tracker:
    """The open blocks, and each line's logical indent (a continuation line counts as its statement's)."""

    def __init__(self) -> None:
        self.stack: list[_Entry] = []
        self.logical = 0
        self.own_indent = 0
        self.line_start = 0
        self.head_start = -1  # where the line's first token starts (-1: the line starts in a string)
        self.last_code = ""

    def clone(self) -> _Tracker:
        other = _Tracker.__new__(_Tracker)
        other.__dict__.update(self.__dict__)
        other.stack = list(self.stack)
        return other

    def on_line(self, tok: _Tok) -> None:
        top = self.stack[-1] if self.stack else None
        if top is not None and top.kind not in _BLOCKS:
            self.logical = top.indent
        elif not (self.last_code in _CONTINUATION_TAILS or self.last_code.endswith(":")):
            self.logical = tok.indent
        self.own_indent = tok.indent
        self.line_start = tok.start
        self.head_start = tok.end

    def push(self, tok: _Tok) -> None:
        self.stack.append(_Entry(tok.text, self.logical, tok.start))

    def pop_lenient(self, closer: str) -> None:
        """Pop what `closer` closes; a stray closer (window started mid-block) changes nothing."""
        for k in range(len(self.stack) - 1, -1, -1):
            if _closes(self.stack[k].kind, closer):
                del self.stack[k:]
                return
            if self.stack[k].kind in _BLOCKS:  # a bracket closer does not reach out of a block
                return

    def track(self, tok: _Tok) -> None:
        kind = tok.kind
        if kind == "line":
            self.on_line(tok)
        elif kind == "litline":
            self.line_start = tok.start
            self.head_start = -1
        elif kind == "open":
            self.push(tok)
            self.last_code = tok.text
        elif kind == "close":
            self.pop_lenient(tok.text)
            self.last_code = tok.text
        elif kind == "tok" and tok.text != "#":
            self.last_code = tok.text


def _innermost_block(stack: list[_Entry], cursor: int) -> int:
    """Index of the innermost `do`/`fn` the prefix opened, or -1."""
    for k in range(len(stack) - 1, -1, -1):
        if stack[k].start < cursor and stack[k].kind in _BLOCKS:
            return k
    return -1


class _PrefixState:
    """The lexer and open blocks at the cursor, and which of those blocks the suffix closes."""

    def __init__(self, prefix: str, suffix: str) -> None:
        # Not final: a `do` just typed may become `done`. Each user resolves that tail with what follows
        # the cursor, so entries are known by their offset (`closed` holds the offsets of closed ones).
        lexer, tracker = _lex_prefix(prefix)
        self.cursor = len(prefix)
        self.lexer = lexer
        self.tracker = tracker
        self.literal_depth = lexer.literal_depth
        self.closed, self.literal_closed = self._resolve_suffix(suffix)

    def clone(self) -> tuple[_Lexer, _Tracker]:
        return self.lexer.clone(), self.tracker.clone()

    def _resolve_suffix(self, suffix: str) -> tuple[frozenset[int], bool]:
        """Offsets of the prefix's open entries (down to the cursor's block) that the suffix closes, and
        whether it closes the string the cursor is in. A block counts as closed by an `end` at its level or
        deeper; a line at or below its level that is not `end`/`else`/... means its `end` is missing."""
        lexer, tracker = self.clone()
        stack, cursor = tracker.stack, self.cursor
        block = _innermost_block(stack, cursor)
        needed = max(block, 0)
        closed: set[int] = set()
        literal_closed = False
        first, newline, rest = suffix.partition("\n")
        pieces: list[str | None] = [first]
        if newline:
            rest = newline + rest
            pieces.append(None)  # the end of the cursor's line
            pieces.extend(rest[k : k + 512] for k in range(0, len(rest), 512))
        for index, piece in enumerate(pieces):
            if piece is None:
                # A string still open at the end of the cursor's line is being typed: the rest is code.
                lexer.drop_strings()
                continue
            for tok in lexer.feed(piece, final=index == len(pieces) - 1):
                if tok.start < cursor:
                    tracker.track(tok)
                    continue
                if tok.kind == "strend":
                    literal_closed = literal_closed or tok.indent < self.literal_depth
                elif tok.kind == "line":
                    tracker.on_line(tok)
                    while (
                        tok.start > cursor
                        and stack
                        and stack[-1].start < cursor
                        and stack[-1].kind in _BLOCKS
                        and tok.text not in _BLOCK_LEVEL_HEADS
                        and tracker.logical <= stack[-1].indent
                    ):
                        stack.pop()
                elif tok.kind == "close" and stack and stack[-1].start < cursor:
                    self._close_prefix_entry(tracker, tok, closed)
                else:
                    tracker.track(tok)
                if len(stack) <= needed and (literal_closed or not self.literal_depth):
                    return frozenset(closed), literal_closed
        return frozenset(closed), literal_closed

    def _close_prefix_entry(self, tracker: _Tracker, tok: _Tok, closed: set[int]) -> None:
        stack = tracker.stack
        if tok.text == "end":
            at_head = tok.start == tracker.head_start and tracker.line_start > self.cursor
            while stack and stack[-1].start < self.cursor:
                top = stack[-1]
                if top.kind in _BLOCKS and not (at_head and tracker.own_indent < top.indent):
                    closed.add(stack.pop().start)
                    return
                stack.pop()  # an `end` below a block's level closes an outer block: this one has none
            return
        for k in range(len(stack) - 1, -1, -1):
            if _closes(stack[k].kind, tok.text):
                closed.add(stack[k].start)
                del stack[k:]
                return
            if stack[k].kind in _BLOCKS:
                return


# The last few prefixes lexed (not final) with their lexer and tracker: typing appends to the prefix, so
# the next request lexes only what was typed since (the lexer is built to be fed in pieces).
_LEXED: deque[tuple[str, _Lexer, _Tracker]] = deque(maxlen=4)


def _lex_prefix(prefix: str) -> tuple[_Lexer, _Tracker]:
    base = max((entry for entry in _LEXED if prefix.startswith(entry[0])), key=lambda e: len(e[0]), default=None)
    if base is None:
        lexer, tracker, done = _Lexer(), _Tracker(), 0
    else:
        lexer, tracker, done = base[1].clone(), base[2].clone(), len(base[0])
    for tok in lexer.feed(prefix[done:]):
        tracker.track(tok)
    _LEXED.append((prefix, lexer.clone(), tracker.clone()))
    return lexer, tracker


@lru_cache(maxsize=8)
def _prefix_state(prefix: str, suffix: str) -> _PrefixState:
    # Shared read-only by the stop check and postprocess of one request; users clone it.
    return _PrefixState(prefix, suffix)


class _BlockCutter:
    """Rule 3 over a completion fed in pieces: `cut` becomes the document offset to cut at."""

    def __init__(self, state: _PrefixState) -> None:
        self.state = state
        self.lexer, self.tracker = state.clone()
        self.cursor = state.cursor
        self.cut: int | None = None
        self._closed_block_at: int | None = None
        self._blank_run = 0
        self._blank_start = 0

    def feed(self, text: str, final: bool = False) -> None:
        if self.cut is not None:
            return
        for tok in self.lexer.feed(text, final):
            self._on(tok)
            if self.cut is not None:
                return

    def _stop(self, offset: int) -> None:
        self.cut = max(offset, self.cursor)

    def _on(self, tok: _Tok) -> None:
        tracker, stack = self.tracker, self.tracker.stack
        if tok.start < self.cursor:  # a token begun in the prefix (`do` of `done`)
            tracker.track(tok)
            return
        kind = tok.kind
        if self._closed_block_at is not None:
            # Only closers of the prefix's brackets may follow the `end` of the cursor's block on its line.
            top = stack[-1] if stack else None
            if (
                kind == "close"
                and top is not None
                and top.start < self.cursor
                and _closes(top.kind, tok.text)
                and top.start not in self.state.closed
            ):
                stack.pop()
                self._closed_block_at = tok.end
            else:
                self._stop(self._closed_block_at)
            return
        if kind == "blank":
            self._blank_run += 1
            if self._blank_run == 1:
                self._blank_start = tok.start
            else:
                self._stop(self._blank_start - 1)
            return
        if kind in ("line", "litline"):
            self._blank_run = 0
        if kind == "litline":
            tracker.track(tok)
        elif kind == "line":
            tracker.on_line(tok)
            top = stack[-1] if stack else None
            if (
                tok.start > self.cursor
                and top is not None
                and top.start < self.cursor
                and top.kind in _BLOCKS
                and tok.text not in _BLOCK_LEVEL_HEADS
                and tracker.logical <= top.indent
            ):
                self._stop(tok.start - 1)  # a new statement at the block's level: the block is over
        elif kind == "strend":
            if tok.indent < self.state.literal_depth and self.state.literal_closed:
                self._stop(tok.start)
        elif kind == "open":
            tracker.push(tok)
            tracker.last_code = tok.text
        elif kind == "close":
            self._close(tok)
            tracker.last_code = tok.text
        else:
            tracker.track(tok)

    def _close(self, tok: _Tok) -> None:
        stack = self.tracker.stack
        top = stack[-1] if stack else None
        if top is None or not _closes(top.kind, tok.text):
            self._stop(tok.start)  # closes what nobody opened, or the wrong thing
        elif top.start >= self.cursor:
            stack.pop()
        elif top.start in self.state.closed:
            self._stop(tok.start)  # the suffix already closes it
        else:
            stack.pop()
            if top.kind in _BLOCKS:
                self._closed_block_at = tok.end


def cut_at_block_end(completion: str, prefix: str, suffix: str) -> str:
    """Rule 3: cut where the completion leaves, or closes more than, the block being edited."""
    cutter = _BlockCutter(_prefix_state(prefix, suffix))
    cutter.feed(completion, final=True)
    if cutter.cut is None:
        return completion
    return completion[: cutter.cut - cutter.cursor].rstrip()


# -- rule 4: repeats of the suffix -----------------------------------------------------------------------

# Lines made only of closers and block keywords repeat easily; they must match with their indentation.
_TRIVIAL_LINE_RE = re.compile(r"(?:end|else|after|rescue|catch|do|->|[\s)\]}>,;|\"'])+")


def _next_suffix_line(suffix: str) -> str | None:
    """The first non-empty line after the cursor's line."""
    for line in suffix.split("\n")[1:]:
        if line.strip():
            return line.rstrip()
    return None


def _repeats_line(line: str, suffix_line: str) -> bool:
    stripped = line.strip()
    if not stripped or stripped != suffix_line.strip():
        return False
    return not _TRIVIAL_LINE_RE.fullmatch(stripped) or line.rstrip() == suffix_line.rstrip()


def _line_head(prefix: str) -> str:
    """The part of the cursor's line before the cursor."""
    return prefix[prefix.rfind("\n") + 1 :]


def drop_suffix_repeats(completion: str, prefix: str, suffix: str) -> str:
    """Rule 4: nothing when the completion is the start of the suffix; else cut where it reaches the next
    non-empty line after the cursor."""
    if not completion.strip():
        return completion
    if suffix.startswith(completion.rstrip()):
        return ""
    following = _next_suffix_line(suffix)
    if following is None:
        return completion
    lines = completion.split("\n")
    mid = is_mid_line(prefix, suffix)
    for j, line in enumerate(lines):
        if j == 0 and (mid or not line.strip()):
            continue
        full = _line_head(prefix) + line if j == 0 else line
        if _repeats_line(full, following):
            return "\n".join(lines[:j]).rstrip()
    return completion


# -- rule 5: repetition loops ----------------------------------------------------------------------------

_LINE_REPEATS = 3
_MAX_BLOCK_LINES = 4
_MAX_UNIT = 16
_HAS_WORD_RE = re.compile(r"[^\W\d]")


def _block_repeat(lines: list[str], last: int) -> int | None:
    """If the stripped `lines[: last + 1]` end with a block of 1–4 lines repeated 3 times: where its first
    copy ends."""
    for size in range(1, _MAX_BLOCK_LINES + 1):
        start = last + 1 - _LINE_REPEATS * size
        if start < 0:
            break
        block = lines[start : start + size]
        if not any(block):
            continue  # blank lines are rule 3's business
        if all(lines[start + r * size : start + (r + 1) * size] == block for r in range(1, _LINE_REPEATS)):
            return start + size
    return None


def _repeat_units() -> tuple[tuple[int, int, re.Pattern[str]], ...]:
    units = []
    for unit in range(2, _MAX_UNIT + 1):
        times = max(4, -(-12 // unit))
        # A lookahead finds every start of `times` back-to-back copies, overlapping ones included.
        units.append((unit, times, re.compile(rf"(?=((.{{{unit}}})\2{{{times - 1}}}))", re.DOTALL)))
    return tuple(units)


_REPEAT_UNITS = _repeat_units()


def _inline_repeat(line: str, low: int) -> int | None:
    """The first prefix `line[:end]`, `end` >= `low`, that ends with a short pattern repeated (4+ times,
    12+ characters, the pattern holding a letter): where that pattern's first copy ends.

    The smallest such `end` wins, then the shortest pattern, as when checking each end as it streams in.
    """
    best: tuple[int, int] | None = None  # (end, first copy's end)
    for unit, times, pattern in _REPEAT_UNITS:
        span = unit * times
        for match in pattern.finditer(line, max(0, low - span)):
            end = match.start() + span
            if best is not None and end >= best[0]:
                break  # later matches of this unit end later still
            if _HAS_WORD_RE.search(match.group(2)):
                best = (end, match.start() + unit)
                break
    return None if best is None else best[1]


def cut_repetitions(completion: str, prefix: str = "") -> str:
    """Rule 5: keep only the first copy of a repeated line block or of a pattern repeated within a line.

    Repeats are found in the order they complete, as the stop check sees them while streaming.
    """
    head = _line_head(prefix)
    lines = completion.split("\n")
    stripped: list[str] = []
    offset = 0  # offset of the current line in the completion
    for j, line in enumerate(lines):
        full = head + line if j == 0 else line
        skip = len(head) if j == 0 else 0
        first = _inline_repeat(full, skip + 1)
        if first is not None:
            return completion[: offset + max(first - skip, 0)].rstrip()
        stripped.append(full.strip())
        block_end = _block_repeat(stripped, j)
        if block_end is not None:
            return "\n".join(lines[:block_end]).rstrip()
        offset += len(line) + 1
    return completion


# -- rule 6: whitespace ----------------------------------------------------------------------------------


def trim_whitespace(completion: str) -> str:
    """Rule 6: no trailing whitespace on any line or at the end; whitespace alone is nothing."""
    text = "\n".join(line.rstrip() for line in completion.split("\n")).rstrip()
    return text if text.strip() else ""


# -- rule 7: never parse worse ---------------------------------------------------------------------------


class ParseGuard:
    """Rule 7's measure: ERROR/MISSING nodes from the region's start to the end of prefix + x + suffix.

    The baseline (x = "") does not depend on the completion, so the engine builds the guard while the
    model generates; each candidate then reparses incrementally from the baseline tree.
    """

    def __init__(self, prefix: str, suffix: str, parser: tree_sitter.Parser | None = None) -> None:
        self.prefix = prefix.encode("utf-8")
        self.suffix = suffix.encode("utf-8")
        # The region starts at the line of the cursor's `do`/`fn`: tree-sitter reports a block the prefix
        # leaves open as an ERROR that starts there, and a completion turns it into MISSING nodes further on.
        stack = _prefix_state(prefix, suffix).tracker.stack
        block = _innermost_block(stack, len(prefix))
        start = stack[block].start if block >= 0 else len(prefix)
        self.region_start = len(prefix[: prefix.rfind("\n", 0, start) + 1].encode("utf-8"))
        self.parser = parser or make_parser()
        self._tree = self.parser.parse(self.prefix + self.suffix)
        self.baseline = count_errors(self._tree.root_node, self.region_start)

    def errors(self, completion: str) -> int:
        """ERROR/MISSING nodes from the region's start to the end: breakage further down counts too."""
        inserted = completion.encode("utf-8")
        if not inserted:
            return self.baseline
        at = len(self.prefix)
        row = self.prefix.count(b"\n")
        column = at - (self.prefix.rfind(b"\n") + 1)
        lines = inserted.count(b"\n")
        end_column = len(inserted) - (inserted.rfind(b"\n") + 1) if lines else column + len(inserted)
        tree = self._tree.copy()
        tree.edit(at, at, at + len(inserted), (row, column), (row, column), (row + lines, end_column))
        doc = self.prefix + inserted + self.suffix
        return count_errors(self.parser.parse(doc, tree).root_node, self.region_start, len(doc))

    def ok(self, completion: str) -> bool:
        return self.errors(completion) <= self.baseline


def close_open_blocks(completion: str, prefix: str, suffix: str) -> str | None:
    """The completion with an `end` for each `do`/`fn` it leaves open (at the indentation of the line that
    opened it) and a closer for each bracket; None when it leaves no block open or ends inside a string."""
    state = _prefix_state(prefix, suffix)
    lexer, tracker = state.clone()
    for tok in lexer.feed(completion, final=True):
        tracker.track(tok)
    if lexer.literal_depth > state.literal_depth:
        return None
    opened = [entry for entry in tracker.stack if entry.start >= state.cursor]
    if not any(entry.kind in _BLOCKS for entry in opened):
        return None
    closing = "".join(
        f"\n{' ' * entry.indent}end" if entry.kind in _BLOCKS else _CLOSER_OF[entry.kind]
        for entry in reversed(opened)
    )
    return completion.rstrip() + closing


def guard_parse(
    completion: str, prefix: str, suffix: str, guard: ParseGuard | None = None
) -> tuple[str, str | None]:
    """Rule 7: the completion, repaired or shortened so that the document parses no worse, or "".

    Returns the text and a reason when it had to change it: closed-block, truncated-parse, worse-parse.
    """
    if not completion:
        return completion, None
    check = guard or ParseGuard(prefix, suffix)
    if check.ok(completion):
        return completion, None
    if is_mid_line(prefix, suffix):
        return "", "worse-parse"  # no lines to add or drop
    lines = completion.split("\n")
    for count in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:count]).rstrip()
        if not candidate.strip():
            break
        if count < len(lines) and check.ok(candidate):
            return candidate, "truncated-parse"
        closed = close_open_blocks(candidate, prefix, suffix)
        if closed is not None and check.ok(closed):
            return closed, "closed-block"
    return "", "worse-parse"


# -- the pipeline ----------------------------------------------------------------------------------------


def postprocess(raw: str, prefix: str, suffix: str, *, guard: ParseGuard | None = None) -> PostprocessResult:
    """Turn raw model text into the completion to offer at the cursor (rules 1–7 of the module doc).

    `guard`, built beforehand for the same prefix and suffix, saves rule 7 its baseline parse."""
    text = strip_junk(raw)
    if not text.strip():
        return PostprocessResult("", "empty")
    reason = "ok"
    steps: list[tuple[str, Callable[[str], str]]] = [
        ("end-of-block", lambda t: cut_at_block_end(t, prefix, suffix)),
        ("repeats-suffix", lambda t: drop_suffix_repeats(t, prefix, suffix)),
        ("repetition", lambda t: cut_repetitions(t, prefix)),
    ]
    if is_mid_line(prefix, suffix):
        steps.insert(0, ("single-line", first_line))
    for tag, step in steps:
        changed = step(text)
        if changed != text:
            reason, text = tag, changed
        if not text.strip():
            return PostprocessResult("", reason)
    text = trim_whitespace(text)
    if not text:
        return PostprocessResult("", reason if reason != "ok" else "empty")
    if suffix.startswith(text):  # rule 4 again: cutting a loop may leave just what follows the cursor
        return PostprocessResult("", "repeats-suffix")
    text, parse_reason = guard_parse(text, prefix, suffix, guard)
    return PostprocessResult(text, parse_reason or reason)


# -- streaming stop check --------------------------------------------------------------------------------


class _StopCheck:
    """Called with the text generated so far after each token; True once nothing more could survive."""

    def __init__(self, prefix: str, suffix: str) -> None:
        self._mid = is_mid_line(prefix, suffix)
        self._state = _prefix_state(prefix, suffix)
        self._head = _line_head(prefix)
        self._following = _next_suffix_line(suffix)
        self._reset()

    def _reset(self) -> None:
        self._seen = ""
        self._stopped = False
        self._lead: int | None = None  # length of the leading special tokens, once known
        self._pending_cr = False
        self._cutter = _BlockCutter(self._state)
        self._partial = self._head  # the current line so far (the cursor's line includes the prefix part)
        self._lines: list[str] = []  # finished lines, stripped

    def __call__(self, text: str) -> bool:
        if not text.startswith(self._seen):
            self._reset()  # not a continuation of the last call: a new generation
        if self._stopped:
            return True
        if len(text) == len(self._seen):
            return False
        old, self._seen = len(self._seen), text
        self._stopped = self._advance(text, old)
        return self._stopped

    def _advance(self, text: str, old: int) -> bool:
        if self._lead is None:
            # Rule 1 drops special tokens at the very start: wait until the text is past them.
            lead = _LEADING_SPECIAL_RE.match(text)
            self._lead = lead.end() if lead else 0
            rest = text[self._lead :]
            if not rest or (rest.startswith("<") and ">" not in rest and len(rest) < _SPECIAL_LOOKBACK):
                self._lead = None
                return False
            old = self._lead
        if _SPECIAL_RE.search(text, max(self._lead, old - _SPECIAL_LOOKBACK)):
            return True
        return self._check(self._clean(text[old:]))

    def _clean(self, new: str) -> str:
        """Rule 1's newline and control-character clean-up, for text that comes in pieces."""
        if self._pending_cr:
            new = "\r" + new
        self._pending_cr = new.endswith("\r")
        if self._pending_cr:
            new = new[:-1]
        return _CONTROL_RE.sub("", new.replace("\r\n", "\n").replace("\r", "\n"))

    def _check(self, new: str) -> bool:
        if not new:
            return False
        if self._mid and "\n" in new:
            return True
        self._cutter.feed(new)
        if self._cutter.cut is not None:
            return True
        parts = new.split("\n")
        for k, part in enumerate(parts):
            before = len(self._partial)
            self._partial += part
            low = max(before, len(self._head) if not self._lines else 0) + 1
            if _inline_repeat(self._partial, low) is not None:
                return True
            if k == len(parts) - 1:
                break
            line, j = self._partial, len(self._lines)
            self._lines.append(line.strip())
            self._partial = ""
            if _block_repeat(self._lines, j) is not None:
                return True
            own = line[len(self._head) :] if j == 0 else line
            if self._following is not None and own.strip() and _repeats_line(line, self._following):
                return True
        return False


def make_stop_check(prefix: str, suffix: str) -> Callable[[str], bool]:
    """A cheap per-token check for streaming: True when further tokens cannot survive `postprocess`.

    Mid-line: at the first newline. Otherwise when the completion closes the cursor's block, dedents to its
    level, has two blank lines in a row, starts repeating the next line of the suffix, or loops; and at a
    special token. Work per call is proportional to the new text only.
    """
    return _StopCheck(prefix, suffix)

"""A reader for Erlang's term text format, as written by `file:consult/1`-style files.

Hex writes a release's `metadata.config` in this format: one `{<<"key">>, Value}.` form per line, with
binaries (`<<"text">>`, `<<"café"/utf8>>`), lists, tuples, atoms, integers and floats. The reader is
strict about syntax and reports the line and column of the first problem, so a malformed package is
skipped with a useful reason instead of yielding half-read metadata.

Python shapes: binaries and strings become `str` (binaries that are not UTF-8 stay `bytes`), atoms
`Atom` (a `str` subclass) except `true`/`false`, which become `bool`; tuples `tuple`, lists `list`,
maps `dict`.
"""

from __future__ import annotations

from typing import Any

Term = Any


class Atom(str):
    """An Erlang atom; a `str` so that comparisons with plain text stay simple."""

    def __repr__(self) -> str:
        return f"Atom({str.__repr__(self)})"


class TermSyntaxError(ValueError):
    def __init__(self, message: str, line: int, column: int, source_name: str = "") -> None:
        where = f"{source_name}:" if source_name else ""
        super().__init__(f"{where}{line}:{column}: {message}")
        self.line = line
        self.column = column


# Escapes inside "..." and '...' (Erlang reference manual, "Escape Sequences").
_SIMPLE_ESCAPES = {
    "b": "\b",
    "d": "\x7f",
    "e": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "s": " ",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}
_ATOM_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@")
_DIGITS_36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class _Reader:
    def __init__(self, text: str, source_name: str) -> None:
        self.text = text
        self.pos = 0
        self.source_name = source_name

    # -- positions and errors -------------------------------------------------------------------------

    def error(self, message: str, pos: int | None = None) -> TermSyntaxError:
        at = self.pos if pos is None else pos
        line = self.text.count("\n", 0, at) + 1
        column = at - (self.text.rfind("\n", 0, at) + 1) + 1
        return TermSyntaxError(message, line, column, self.source_name)

    def peek(self, length: int = 1) -> str:
        return self.text[self.pos : self.pos + length]

    def describe_here(self) -> str:
        return repr(self.text[self.pos : self.pos + 10]) if self.pos < len(self.text) else "end of input"

    def skip_blanks(self) -> None:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char.isspace():
                self.pos += 1
            elif char == "%":  # comment to end of line
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end + 1
            else:
                return

    def expect(self, token: str) -> None:
        self.skip_blanks()
        if not self.text.startswith(token, self.pos):
            raise self.error(f"expected {token!r} but found {self.describe_here()}")
        self.pos += len(token)

    def at_end(self) -> bool:
        self.skip_blanks()
        return self.pos >= len(self.text)

    # -- terms ----------------------------------------------------------------------------------------

    def term(self) -> Term:
        self.skip_blanks()
        if self.pos >= len(self.text):
            raise self.error("expected a term but found end of input")
        char = self.text[self.pos]
        if char == "{":
            return tuple(self.sequence("{", "}"))
        if char == "[":
            return self.list_term()
        if self.text.startswith("<<", self.pos):
            return self.binary()
        if self.text.startswith("#{", self.pos):
            return self.map_term()
        if char == '"':
            return self.strings()
        if char == "'":
            return Atom(self.quoted("'"))
        if char == "$":
            return self.char_literal()
        if char.isdigit() or (char in "+-" and self.peek(2)[1:].isdigit()):
            return self.number()
        if char.isalpha() and char.islower():
            return self.bare_atom()
        if char.isupper() or char == "_":
            raise self.error(f"variables are not terms (found {self.describe_here()})")
        raise self.error(f"unexpected {self.describe_here()}")

    def sequence(self, opening: str, closing: str) -> list[Term]:
        self.expect(opening)
        items: list[Term] = []
        self.skip_blanks()
        if self.text.startswith(closing, self.pos):
            self.pos += len(closing)
            return items
        while True:
            items.append(self.term())
            self.skip_blanks()
            if self.text.startswith(",", self.pos):
                self.pos += 1
            elif self.text.startswith(closing, self.pos):
                self.pos += len(closing)
                return items
            else:
                raise self.error(f"expected ',' or {closing!r} but found {self.describe_here()}")

    def list_term(self) -> list[Term]:
        self.expect("[")
        items: list[Term] = []
        self.skip_blanks()
        if self.peek() == "]":
            self.pos += 1
            return items
        while True:
            items.append(self.term())
            self.skip_blanks()
            char = self.peek()
            if char == ",":
                self.pos += 1
            elif char == "]":
                self.pos += 1
                return items
            elif char == "|":  # [H | T]: only a proper tail has a Python shape
                self.pos += 1
                self.skip_blanks()
                tail_at = self.pos
                tail = self.term()
                if not isinstance(tail, list):
                    raise self.error("improper lists are not supported", tail_at)
                self.expect("]")
                return items + tail
            else:
                raise self.error(f"expected ',', '|' or ']' but found {self.describe_here()}")

    def map_term(self) -> dict[Term, Term]:
        self.expect("#{")
        result: dict[Term, Term] = {}
        self.skip_blanks()
        if self.peek() == "}":
            self.pos += 1
            return result
        while True:
            key_at = self.pos
            key = self.term()
            self.expect("=>")
            value = self.term()
            try:
                result[key] = value
            except TypeError:
                raise self.error("a map key must not contain lists or maps", key_at) from None
            self.skip_blanks()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() == "}":
                self.pos += 1
                return result
            else:
                raise self.error(f"expected ',' or '}}' but found {self.describe_here()}")

    def binary(self) -> str | bytes:
        self.expect("<<")
        data = bytearray()
        self.skip_blanks()
        if self.text.startswith(">>", self.pos):
            self.pos += 2
            return ""
        while True:
            self.skip_blanks()
            segment_at = self.pos
            if self.peek() == '"':
                text = self.strings()
                encoding = self.segment_type()
                # Without /utf8 Erlang stores one byte per character; a character above 255 cannot be
                # one byte, so the writer can only have meant UTF-8 (lenient where Erlang truncates).
                if encoding == "utf8" or any(ord(c) > 255 for c in text):
                    data += text.encode("utf-8")
                else:
                    data += text.encode("latin-1")
            else:
                value = self.term()
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 255:
                    raise self.error("a binary segment must be a string or a byte (0..255)", segment_at)
                if self.segment_type():
                    raise self.error("typed integer segments are not supported", segment_at)
                data.append(value)
            self.skip_blanks()
            if self.peek() == ",":
                self.pos += 1
            elif self.text.startswith(">>", self.pos):
                self.pos += 2
                break
            else:
                raise self.error(f"expected ',' or '>>' but found {self.describe_here()}")
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(data)

    def segment_type(self) -> str:
        """The `/utf8`-style suffix of a binary segment, if any ("" for none)."""
        self.skip_blanks()
        if self.peek() != "/":
            return ""
        self.pos += 1
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] == "-"):
            self.pos += 1
        kind = self.text[start : self.pos]
        if kind not in ("utf8", "binary", "bits", "bitstring", "latin1"):
            raise self.error(f"unsupported binary segment type {kind!r}", start)
        return "utf8" if kind == "utf8" else "latin1"

    def strings(self) -> str:
        """One string, or adjacent strings ("a" "b"), which Erlang concatenates."""
        parts = [self.quoted('"')]
        while True:
            self.skip_blanks()
            if self.peek() != '"':
                return "".join(parts)
            parts.append(self.quoted('"'))

    def quoted(self, quote: str) -> str:
        start = self.pos
        self.pos += 1
        out: list[str] = []
        text = self.text
        while True:
            if self.pos >= len(text):
                raise self.error(f"unterminated {'string' if quote == chr(34) else 'quoted atom'}", start)
            char = text[self.pos]
            if char == quote:
                self.pos += 1
                return "".join(out)
            if char == "\\":
                out.append(self.escape())
            else:
                out.append(char)
                self.pos += 1

    def escape(self) -> str:
        escape_at = self.pos
        self.pos += 1  # the backslash
        if self.pos >= len(self.text):
            raise self.error("unterminated escape sequence", escape_at)
        char = self.text[self.pos]
        if char in "01234567":
            end = self.pos
            while end < len(self.text) and end - self.pos < 3 and self.text[end] in "01234567":
                end += 1
            value = int(self.text[self.pos : end], 8)
            self.pos = end
            return chr(value)
        if char == "x":
            if self.peek(2) == "x{":
                end = self.text.find("}", self.pos)
                digits = self.text[self.pos + 2 : end] if end > 0 else ""
                self.pos = end + 1
            else:
                digits = self.text[self.pos + 1 : self.pos + 3]
                self.pos += 3
            try:
                return chr(int(digits, 16))
            except ValueError:
                raise self.error("malformed \\x escape", escape_at) from None
        if char == "^":  # control character: \^A is 1
            letter = self.text[self.pos + 1 : self.pos + 2]
            if not letter:
                raise self.error("unterminated escape sequence", escape_at)
            self.pos += 2
            return chr(ord(letter) % 32)
        self.pos += 1
        return _SIMPLE_ESCAPES.get(char, char)  # an unknown escape stands for the character itself

    def char_literal(self) -> int:
        self.pos += 1  # $
        if self.pos >= len(self.text):
            raise self.error("expected a character after '$'")
        if self.text[self.pos] == "\\":
            return ord(self.escape())
        self.pos += 1
        return ord(self.text[self.pos - 1])

    def bare_atom(self) -> Atom | bool:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _ATOM_CHARS:
            self.pos += 1
        name = self.text[start : self.pos]
        if name == "true":
            return True
        if name == "false":
            return False
        return Atom(name)

    def number(self) -> int | float:
        start = self.pos
        sign = 1
        if self.text[self.pos] in "+-":
            sign = -1 if self.text[self.pos] == "-" else 1
            self.pos += 1
        whole = self.digits("0123456789")
        if self.peek() == "#":  # Base#Digits, e.g. 16#ff
            base = int(whole)
            if not 2 <= base <= 36:
                raise self.error(f"integer base {base} is outside 2..36", start)
            self.pos += 1
            value_text = self.digits(_DIGITS_36[:base] + _DIGITS_36[10:base].upper())
            if not value_text:
                raise self.error(f"expected base-{base} digits", self.pos)
            return sign * int(value_text, base)
        if self.peek() == "." and self.peek(2)[1:].isdigit():
            self.pos += 1
            fraction = self.digits("0123456789")
            exponent = ""
            if self.peek() in ("e", "E"):
                exponent_at = self.pos
                self.pos += 1
                exponent_sign = ""
                if self.peek() in ("+", "-"):
                    exponent_sign = self.peek()
                    self.pos += 1
                exponent_digits = self.digits("0123456789")
                if not exponent_digits:
                    raise self.error("expected exponent digits", exponent_at)
                exponent = f"e{exponent_sign}{exponent_digits}"
            return sign * float(f"{whole}.{fraction}{exponent}")
        return sign * int(whole)

    def digits(self, allowed: str) -> str:
        """Digits with Erlang's `_` separators (1_000) removed."""
        start = self.pos
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            separator = char == "_" and self.pos > start and text[self.pos + 1 : self.pos + 2] in allowed
            if not (char in allowed or (separator and text[self.pos + 1 : self.pos + 2])):
                break
            self.pos += 1
        return self.text[start : self.pos].replace("_", "")

    def form_end(self) -> None:
        """A form ends with '.' followed by blank, comment or end of input (so `1.5` is not a form end)."""
        self.skip_blanks()
        if self.peek() != ".":
            raise self.error(f"expected '.' after the term but found {self.describe_here()}")
        following = self.text[self.pos + 1 : self.pos + 2]
        if following and not (following.isspace() or following == "%"):
            raise self.error("expected whitespace after the terminating '.'", self.pos + 1)
        self.pos += 1


def consult(text: str, source_name: str = "") -> list[Term]:
    """All terms of a `file:consult/1` file: each term followed by '.'."""
    reader = _Reader(text, source_name)
    terms: list[Term] = []
    while not reader.at_end():
        terms.append(reader.term())
        reader.form_end()
    return terms


def parse_term(text: str, source_name: str = "") -> Term:
    """Exactly one term, with or without the terminating '.'."""
    reader = _Reader(text, source_name)
    term = reader.term()
    reader.skip_blanks()
    if reader.peek() == ".":
        reader.form_end()
    if not reader.at_end():
        raise reader.error(f"unexpected {reader.describe_here()} after the term")
    return term


def is_proplist(value: Term) -> bool:
    """A non-empty list of {Key, Value} pairs with text keys, which reads naturally as a dict."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) for item in value)
    )


def to_python(value: Term) -> Term:
    """Proplists become dicts (recursively); everything else keeps its shape."""
    if is_proplist(value):
        return {str(key): to_python(item) for key, item in value}
    if isinstance(value, list):
        return [to_python(item) for item in value]
    if isinstance(value, tuple):
        return tuple(to_python(item) for item in value)
    if isinstance(value, dict):
        return {key: to_python(item) for key, item in value.items()}
    return value


def metadata_dict(text: str, source_name: str = "metadata.config") -> dict[str, Term]:
    """Hex's `metadata.config`: top-level {Key, Value} forms as a dict, proplists as nested dicts."""
    result: dict[str, Term] = {}
    for index, term in enumerate(consult(text, source_name)):
        if not (isinstance(term, tuple) and len(term) == 2 and isinstance(term[0], str)):
            raise ValueError(f"{source_name}: form {index + 1} is not a {{Key, Value}} pair: {term!r}")
        result[str(term[0])] = to_python(term[1])
    return result

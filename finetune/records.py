"""What sources produce and the dataset builder consumes: one `Record` per file, doc page or book section.

Records travel as JSON lines. Every record carries its provenance (source, package, version, path,
licence, URL) all the way into the training datasets, so any sample can be traced back and removed.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Kind = Literal["code", "doc", "book"]
# "elixir" (.ex/.exs), "erlang" (.erl/.hrl), "eex" (templates), "markdown", "text".
Language = str


@dataclass(frozen=True)
class Provenance:
    source: str  # local | hex | github | books | beam_docs | otp
    package: str = ""  # Hex package, GitHub owner/repo, OTP application, book title, project name
    version: str = ""  # release, commit, OTP/Elixir version
    path: str = ""  # path inside the package/repository/book
    licence: str = ""  # SPDX identifier(s) joined with " OR ", or "" when unknown
    url: str = ""


@dataclass(frozen=True)
class Block:
    """A piece of a book section or doc page: prose, or a code block (IEx sessions are code too)."""

    type: Literal["prose", "code"]
    text: str
    language: Language = ""  # for code: elixir | erlang | iex | shell | "" (unknown)


@dataclass(frozen=True)
class Record:
    kind: Kind
    language: Language
    text: str
    provenance: Provenance
    # Structure where there is some: books {"book", "chapter", "chapter_title", "section",
    # "section_title", "order"} plus `blocks`; doc pages {"module", "functions": [...]}.
    meta: dict[str, Any] = field(default_factory=dict)
    blocks: tuple[Block, ...] = ()

    @property
    def id(self) -> str:
        """Content address: the same text from two places is one record for exact dedupe."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["id"] = self.id
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        return cls(
            kind=data["kind"],
            language=data["language"],
            text=data["text"],
            provenance=Provenance(**data["provenance"]),
            meta=data.get("meta") or {},
            blocks=tuple(Block(**block) for block in data.get("blocks") or ()),
        )


@dataclass(frozen=True)
class Skipped:
    """An input a source could not use: reported with where and why, never fatal."""

    where: str  # file path, URL or package@version
    reason: str


LANGUAGE_BY_SUFFIX = {
    ".ex": "elixir",
    ".exs": "elixir",
    ".erl": "erlang",
    ".hrl": "erlang",
    ".eex": "eex",
    ".heex": "eex",
    ".leex": "eex",
    ".md": "markdown",
}


def language_of(path: str) -> Language | None:
    """The language of a source file by its suffix; None for files the pipeline does not take."""
    for suffix, language in LANGUAGE_BY_SUFFIX.items():
        if path.endswith(suffix):
            return language
    return None

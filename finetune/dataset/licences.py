"""Licence allow-list: keep a record only when its licence (an SPDX expression) permits training use.

Default policy — permissive licences only, as in The Stack:
- allowed: MIT, MIT-0, Apache-2.0, BSD-2-Clause, BSD-3-Clause, ISC, 0BSD, Zlib, BSL-1.0 and the
  public-domain dedications Unlicense and CC0-1.0;
- not allowed by default: weak copyleft (MPL-2.0, EPL-1.0/2.0, LGPL). Their terms attach obligations to
  the licensed files themselves, and a dataset that redistributes those files inherits them; they are
  available as `WEAK_COPYLEFT` for a policy that accepts them knowingly;
- never allowed by default: strong copyleft (GPL, AGPL), proprietary and anything else not listed.

Expressions: `A OR B` passes when any alternative is allowed (the user may choose it); `A AND B` needs
every part; `A WITH exception` is judged by `A` (an exception only adds permissions); `A+` and
`-or-later` are judged by the named version. Matching is case-insensitive, as SPDX ids are.

A record whose licence is unknown ("" or NOASSERTION, or an expression that cannot be parsed) is dropped
unless the policy has `allow_unknown`. A file that declares its own `SPDX-License-Identifier` is judged
by that declaration AND its package's licence: a GPL file inside an MIT package is not MIT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

from finetune.dataset.clean import Drop, where_of
from finetune.records import Record
from finetune.sources.licence import normalise

PERMISSIVE = frozenset(
    {
        "MIT",
        "MIT-0",
        "Apache-2.0",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "ISC",
        "0BSD",
        "Zlib",
        "BSL-1.0",
        "Unlicense",
        "CC0-1.0",
    }
)
WEAK_COPYLEFT = frozenset({"MPL-2.0", "EPL-1.0", "EPL-2.0", "LGPL-2.1-only", "LGPL-3.0-only"})

# Values that say "nobody determined the licence", as opposed to naming one.
UNKNOWN_VALUES = frozenset({"", "noassertion", "unknown", "other", "none", "see license", "see licence"})


class Verdict(Enum):
    ALLOWED = "allowed"
    UNKNOWN = "unknown"
    DENIED = "denied"


@dataclass(frozen=True)
class LicencePolicy:
    allowed: frozenset[str] = PERMISSIVE
    allow_unknown: bool = False
    _allowed_lower: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_allowed_lower", frozenset(name.lower() for name in self.allowed))

    def allows_id(self, licence_id: str) -> Verdict:
        """The verdict on one licence id (no operators)."""
        name = licence_id.strip()
        if name.lower() in UNKNOWN_VALUES:
            return Verdict.UNKNOWN
        if name.endswith("+"):
            name = name[:-1]
        name = re.sub(r"-or-later$", "-only", name, flags=re.I)
        spdx = normalise(name).lower()
        if spdx in self._allowed_lower or name.lower() in self._allowed_lower:
            return Verdict.ALLOWED
        return Verdict.DENIED


class ExpressionError(ValueError):
    pass


# Operators are whole words between spaces or parentheses (so `GPL-2.0-or-later` is one id); operands may
# contain spaces ("Apache 2.0"), as declared names are free text.
_SPLIT = re.compile(r"(\(|\)|(?<![^\s()])(?:OR|AND|WITH)(?![^\s()]))", re.I)
_OPERATORS = frozenset({"OR", "AND", "WITH"})


def tokenize(expression: str) -> list[str]:
    tokens = []
    for piece in _SPLIT.split(expression):
        token = piece.strip()
        if token:
            tokens.append(token.upper() if token.upper() in _OPERATORS else token)
    return tokens


class _Evaluator:
    """Recursive descent over `or := and (OR and)*; and := with (AND with)*; with := atom [WITH id]`."""

    def __init__(self, tokens: list[str], policy: LicencePolicy) -> None:
        self.tokens = tokens
        self.position = 0
        self.policy = policy

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ExpressionError("licence expression ends too early")
        self.position += 1
        return token

    def parse(self) -> Verdict:
        verdict = self.parse_or()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()!r} in licence expression")
        return verdict

    def parse_or(self) -> Verdict:
        verdicts = [self.parse_and()]
        while self.peek() == "OR":
            self.take()
            verdicts.append(self.parse_and())
        return any_of(verdicts)

    def parse_and(self) -> Verdict:
        verdicts = [self.parse_with()]
        while self.peek() == "AND":
            self.take()
            verdicts.append(self.parse_with())
        return all_of(verdicts)

    def parse_with(self) -> Verdict:
        verdict = self.parse_atom()
        if self.peek() == "WITH":
            self.take()
            exception = self.take()
            if exception in {"(", ")"} | _OPERATORS:
                raise ExpressionError("WITH needs an exception id")
        return verdict

    def parse_atom(self) -> Verdict:
        token = self.take()
        if token == "(":
            verdict = self.parse_or()
            if self.take() != ")":
                raise ExpressionError("unbalanced parentheses in licence expression")
            return verdict
        if token == ")" or token in _OPERATORS:
            raise ExpressionError(f"unexpected {token!r} in licence expression")
        return self.policy.allows_id(token)


def any_of(verdicts: list[Verdict]) -> Verdict:
    if Verdict.ALLOWED in verdicts:
        return Verdict.ALLOWED
    return Verdict.UNKNOWN if Verdict.UNKNOWN in verdicts else Verdict.DENIED


def all_of(verdicts: list[Verdict]) -> Verdict:
    if Verdict.DENIED in verdicts:
        return Verdict.DENIED
    return Verdict.UNKNOWN if Verdict.UNKNOWN in verdicts else Verdict.ALLOWED


def judge(expression: str, policy: LicencePolicy = LicencePolicy()) -> Verdict:
    """The verdict on an SPDX expression; unparsable expressions are UNKNOWN, not errors."""
    if expression.strip().lower() in UNKNOWN_VALUES:
        return Verdict.UNKNOWN
    try:
        return _Evaluator(tokenize(expression), policy).parse()
    except ExpressionError:
        return Verdict.UNKNOWN


_FILE_SPDX = re.compile(r"SPDX-License-Identifier:\s*(.+?)\s*(?:\*/|-->|$)", re.M)


def file_licence(text: str, header_lines: int = 30) -> str:
    """The `SPDX-License-Identifier` a file declares in its header, or ""."""
    head = "\n".join(text.split("\n", header_lines)[:header_lines])
    found = _FILE_SPDX.search(head)
    return found[1].strip() if found else ""


def effective_licence(record: Record) -> str:
    """The expression a record is judged by: its package licence, and its own header's when it has one."""
    package = record.provenance.licence.strip()
    own = file_licence(record.text) if record.kind == "code" else ""
    if not own:
        return package
    if package.lower() in UNKNOWN_VALUES:
        return own
    return f"({package}) AND ({own})"


def filter_licence(record: Record, policy: LicencePolicy = LicencePolicy()) -> Record | Drop:
    """The record when its licence passes the policy, else a Drop (reason `unknown` or `not-allowed`)."""
    expression = effective_licence(record)
    verdict = judge(expression, policy)
    if verdict is Verdict.ALLOWED or (verdict is Verdict.UNKNOWN and policy.allow_unknown):
        return record
    if verdict is Verdict.UNKNOWN:
        return Drop("licences", "unknown", where_of(record), expression or "no licence")
    return Drop("licences", "not-allowed", where_of(record), expression)

"""Secret scrubbing: replace credentials with `<SECRET>` before any record is written, counting by kind.

Two families of detector:
- token formats that are secrets wherever they appear (AWS access key ids, GitHub, Slack, Stripe secret,
  Google API keys, JWTs, PEM private key blocks, Slack webhooks);
- assignments whose *name* says secret (`secret_key_base:`, `password:`, `api_key =`, `@signing_key`,
  `{:password, …}`, `"token" => …`, `HEX_API_KEY=…`) and whose literal value looks random: long enough,
  no whitespace, high character entropy, mixed character classes. A named-secret assignment with a
  dictionary-like value (`password: "postgres"`, `password: "hello world"`) is a dev default or a test
  fixture, not a credential, and stays.

Ordinary code is left alone: hashes, UUIDs and base64 fixtures are only touched when they are the value of
a secret-named assignment, and Stripe publishable keys (`pk_…`) are public by design.

Only the secret itself is replaced — quotes, sigils and `<<"…">>` stay — so the code still parses.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from finetune.records import Record

PLACEHOLDER = "<SECRET>"

# kind → (literals one of which every match contains, pattern); the whole match is the secret. The
# literals let most texts skip a pattern with a substring test, which is far cheaper than a regex scan.
TOKEN_PATTERNS: dict[str, tuple[tuple[str, ...], re.Pattern[str]]] = {
    "private-key": (
        ("PRIVATE KEY",),
        re.compile(
            r"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----"
            # The body: base64 lines (and PEM headers such as Proc-Type), with real or escaped newlines;
            # a BEGIN line with no body is code that handles keys, not a key.
            r"(?:(?:\s|\\n)+(?:[A-Za-z0-9+/=]{20,}|[A-Za-z-]+: [^\n\\]*))+"
            r"(?:(?:\s|\\n)*-----END \1-----)?"
        ),
    ),
    "aws-access-key-id": (
        ("AKIA", "ASIA", "ABIA", "ACCA"),
        re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    ),
    "github-token": (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    ),
    "slack-token": (("xox",), re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,250}")),
    "slack-webhook": (
        ("hooks.slack.com",),
        re.compile(r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+"),
    ),
    "stripe-key": (
        ("k_live_", "k_test_"),
        re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,247}\b"),
    ),
    "google-api-key": (("AIza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])")),
    "jwt": (("eyJ",), re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
}

# A name that says "this value is a credential" contains one of these words (salts and ids are not
# secrets). The pattern starts at the word, not at the name, because a leading `[A-Za-z0-9_]*` would make
# the regex retry at every identifier; the whole name is recovered afterwards for the kind.
_SECRET_WORD = (
    r"(?:secret|passw(?:or)?d|api_?key|access_?key|private_?key|signing_?key|encryption_?key"
    r"|token|credential)"
)
# `name: "v"`, `name = "v"`, `:name, "v"` (tuples / Keyword), `"name" => "v"`, `@name "v"`, `NAME="v"`,
# with an optional binary `<<` or sigil opener before the quote. The value is group "value".
_NAMED_LITERAL_SOURCE = (
    _SECRET_WORD + r"[A-Za-z0-9_]*[\"']?"
    r"(?:\s*(?::|=>|=|,)\s*|\s+)"
    r"(?:<<|~[sS])?(?P<quote>\"|')(?P<value>[^\"'\n]{1,500})(?P=quote)"
)
# Run on lower-cased text: a case-sensitive scan is several times faster than a case-insensitive one.
_NAMED_LITERAL_LOWER = re.compile(_NAMED_LITERAL_SOURCE)
_NAMED_LITERAL_ANY_CASE = re.compile(_NAMED_LITERAL_SOURCE, re.I)
# Unquoted environment-file / shell form: `SECRET_KEY_BASE=abc…`, `export HEX_API_KEY=abc…`.
_ENV_ASSIGNMENT = re.compile(
    r"(?m)^(?:export\s+)?(?P<name>[A-Z0-9_]*(?:SECRET|PASSWORD|PASSWD|API_KEY|TOKEN|ACCESS_KEY)[A-Z0-9_]*)="
    r"(?P<value>[^\s\"'#]+)"
)


@dataclass(frozen=True)
class RandomnessRule:
    """When a secret-named literal is a credential rather than a default or a fixture."""

    min_length: int = 16
    # Shannon entropy in bits per character. Random hex reaches ~3.7 over 32 characters, random base64
    # ~5 over 40; English-like values ("this_is_my_dev_password") stay below these when combined with
    # the character-class test.
    min_entropy: float = 3.0
    # Of lower case, upper case and digits, a generated key mixes at least two.
    min_character_classes: int = 2


def shannon_entropy(text: str) -> float:
    if not text:
        return 0.0
    counts = Counter(text)
    total = len(text)
    return -sum(count / total * math.log2(count / total) for count in counts.values())


def character_classes(text: str) -> int:
    return sum(
        (
            any(char.islower() for char in text),
            any(char.isupper() for char in text),
            any(char.isdigit() for char in text),
        )
    )


# Letters only, in CamelCase or separated words: `EmergencyOffToken`, `session_token_name`.
_WORDS = re.compile(r"(?:[A-Z]?[a-z]{2,}|[A-Z]{2,}(?![a-z]))(?:[_.\-]?(?:[A-Z]?[a-z]{2,}|[A-Z]{2,}(?![a-z])))+")


def looks_like_words(value: str) -> bool:
    """A name made of words (no digits) is an identifier, not a generated key."""
    return _WORDS.fullmatch(value) is not None


def looks_random(value: str, rule: RandomnessRule = RandomnessRule()) -> bool:
    """True for values that look like generated keys: long, no spaces, high entropy, mixed classes."""
    if len(value) < rule.min_length or any(char.isspace() for char in value):
        return False
    if value == PLACEHOLDER or value.startswith(("${", "#{", "<%")):  # already scrubbed or interpolated
        return False
    if looks_like_words(value):
        return False
    return (
        shannon_entropy(value) >= rule.min_entropy and character_classes(value) >= rule.min_character_classes
    )


@dataclass
class ScrubResult:
    text: str
    counts: Counter[str] = field(default_factory=Counter)


def _scrub_tokens(text: str, counts: Counter[str]) -> str:
    for kind, (literals, pattern) in TOKEN_PATTERNS.items():
        if not any(literal in text for literal in literals):
            continue

        def substitute(match: re.Match[str], kind: str = kind) -> str:
            counts[kind] += 1
            return PLACEHOLDER

        text = pattern.sub(substitute, text)
    return text


def _scrub_named(text: str, counts: Counter[str], rule: RandomnessRule) -> str:
    lowered = text.lower()
    # Spans found in the lower-cased text are valid in the original only when lower-casing kept every
    # character's length, true except for a few non-ASCII letters (then the slower scan is used).
    if len(lowered) == len(text):
        matches = _NAMED_LITERAL_LOWER.finditer(lowered)
    else:
        matches = _NAMED_LITERAL_ANY_CASE.finditer(text)
    pieces: list[str] = []
    done = 0
    for match in matches:
        start, end = match.span("value")
        if not looks_random(text[start:end], rule):
            continue
        counts[_named_kind(_name_before(text, match.start()))] += 1
        pieces += [text[done:start], PLACEHOLDER]
        done = end
    pieces.append(text[done:])
    text = "".join(pieces)

    def substitute_env(match: re.Match[str]) -> str:
        if not looks_random(match["value"], rule):
            return match.group()
        counts[_named_kind(match["name"])] += 1
        return match.group()[: match.start("value") - match.start()] + PLACEHOLDER

    return _ENV_ASSIGNMENT.sub(substitute_env, text)


def _name_before(text: str, position: int) -> str:
    """The whole identifier around the secret word found at `position` (`hex_api_key`, `@secret`)."""
    start = position
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_@"):
        start -= 1
    name = re.match(r"@?[A-Za-z0-9_]*", text[start : start + 200])
    return name.group() if name else ""


def _named_kind(name: str) -> str:
    lowered = name.lower().lstrip("@")
    if "hex" in lowered and "key" in lowered:
        return "hex-api-key"
    for part, kind in (
        ("secret_key_base", "secret-key-base"),
        ("passw", "password"),
        ("api", "api-key"),
        ("token", "token"),
    ):
        if part in lowered:
            return kind
    return "named-secret"


def scrub(text: str, rule: RandomnessRule = RandomnessRule()) -> ScrubResult:
    """The text with every detected secret replaced by PLACEHOLDER, and the count of each kind replaced."""
    counts: Counter[str] = Counter()
    scrubbed = _scrub_tokens(text, counts)
    scrubbed = _scrub_named(scrubbed, counts, rule)
    return ScrubResult(scrubbed, counts)


def _scrub_value(value: Any, counts: Counter[str], rule: RandomnessRule) -> Any:
    if isinstance(value, str):
        result = scrub(value, rule)
        counts.update(result.counts)
        return result.text
    if isinstance(value, list | tuple):
        return type(value)(_scrub_value(item, counts, rule) for item in value)
    if isinstance(value, dict):
        return {key: _scrub_value(item, counts, rule) for key, item in value.items()}
    return value


def scrub_record(record: Record, rule: RandomnessRule = RandomnessRule()) -> tuple[Record, Counter[str]]:
    """The record with its text, blocks and metadata strings scrubbed, and the counts by kind."""
    counts: Counter[str] = Counter()
    text = _scrub_value(record.text, counts, rule)
    blocks = tuple(replace(block, text=_scrub_value(block.text, counts, rule)) for block in record.blocks)
    meta = _scrub_value(record.meta, counts, rule)
    if not counts:
        return record, counts
    return replace(record, text=text, blocks=blocks, meta=meta), counts

"""MultiPL-E-format problems and completion files (JSON lines), loaded with errors that name file:line.

A MultiPL-E Elixir file (`humaneval-elixir`, `mbpp-elixir`) loads unchanged: its lines carry name, language,
prompt, doctests, original, prompt_terminology, tests and stop_tokens. Only name, prompt and tests are
required; keys that are not `Problem` fields are kept in `extra` (e.g. a suite's `wrong_solution`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, TypeVar

# MultiPL-E's `stop()` for Elixir (dataset_builder/humaneval_to_elixir.py).
ELIXIR_STOP_TOKENS: tuple[str, ...] = ("\ndefmodule", "\ndefp", "\ndef ", "\n#", "\n\n")
SUPPORTED_LANGUAGES = frozenset({"elixir"})


class ProblemError(ValueError):
    """A problem or completion file is malformed; the message starts with `file:line:`."""


@dataclass(frozen=True)
class Problem:
    name: str
    prompt: str
    tests: str
    stop_tokens: tuple[str, ...] = ELIXIR_STOP_TOKENS
    language: str = "elixir"
    entry_point: str = ""
    canonical_solution: str = ""
    category: str = ""
    # Unknown keys, verbatim. Compared but not hashed: a dict would make the dataclass unhashable.
    extra: dict[str, Any] = field(default_factory=dict, hash=False)


_REQUIRED = ("name", "prompt", "tests")
_STRING_FIELDS = ("name", "prompt", "tests", "language", "entry_point", "canonical_solution", "category")
_PROBLEM_FIELDS = frozenset(f.name for f in fields(Problem)) - {"extra"}


def json_objects(path: Path, error_type: type[Exception] = ProblemError) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file; anything but a JSON object raises
    `error_type` naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise error_type(f"{path}: cannot read: {error}") from error
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise error_type(f"{path}:{number}: invalid JSON: {error.msg} (column {error.colno})") from error
        if not isinstance(value, dict):
            raise error_type(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
        yield number, value


def _string(where: str, data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ProblemError(f"{where}: field '{key}' must be a string, got {type(value).__name__}")
    return value


def _stop_tokens(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(token, str) for token in value):
        raise ProblemError(f"{where}: field 'stop_tokens' must be a list of strings")
    return tuple(value)


def problem_from_json(data: dict[str, Any], where: str) -> Problem:
    """One problem from a decoded line; `where` ("file:line") prefixes every error."""
    for key in _REQUIRED:
        if key not in data:
            raise ProblemError(f"{where}: missing required field '{key}'")
    values: dict[str, Any] = {key: _string(where, data, key) for key in _STRING_FIELDS if key in data}
    if not values["name"].strip():
        raise ProblemError(f"{where}: field 'name' is empty")
    language = values.get("language", "elixir").lower()
    if language not in SUPPORTED_LANGUAGES:
        # A Lua/Python MultiPL-E file would "run" under elixir and score 0 %: refuse it instead.
        raise ProblemError(f"{where}: field 'language' is {values['language']!r}; only elixir is supported")
    values["language"] = language
    if "stop_tokens" in data:
        values["stop_tokens"] = _stop_tokens(where, data["stop_tokens"])
    extra = {key: value for key, value in data.items() if key not in _PROBLEM_FIELDS}
    return Problem(**values, extra=extra)


class Named(Protocol):
    @property
    def name(self) -> str: ...


NamedT = TypeVar("NamedT", bound=Named)


def load_named(path: Path, parse: Callable[[dict[str, Any], str], NamedT]) -> list[NamedT]:
    """What `parse(data, "file:line")` makes of each JSONL line, in file order. Duplicate names are an
    error (results are keyed by name)."""
    items: list[NamedT] = []
    first_line: dict[str, int] = {}
    for number, data in json_objects(path):
        item = parse(data, f"{path}:{number}")
        if item.name in first_line:
            raise ProblemError(f"{path}:{number}: duplicate name {item.name!r} (first at line {first_line[item.name]})")
        first_line[item.name] = number
        items.append(item)
    return items


def load_problems(path: Path) -> list[Problem]:
    """Problems in file order; a duplicate name is an error."""
    return load_named(path, problem_from_json)


def load_completions(path: Path) -> dict[str, list[str]]:
    """`{"name", "completion"}` or `{"name", "completions": [...]}` lines; lines of one name accumulate
    in file order. Other keys (temperature, model…) are ignored."""
    completions: dict[str, list[str]] = {}
    for number, data in json_objects(path):
        where = f"{path}:{number}"
        if "name" not in data:
            raise ProblemError(f"{where}: missing required field 'name'")
        name = _string(where, data, "name")
        has_one, has_many = "completion" in data, "completions" in data
        if has_one == has_many:
            raise ProblemError(f"{where}: expected exactly one of the fields 'completion' and 'completions'")
        if has_one:
            batch = [_string(where, data, "completion")]
        else:
            batch = data["completions"]
            if not isinstance(batch, list) or not all(isinstance(item, str) for item in batch):
                raise ProblemError(f"{where}: field 'completions' must be a list of strings")
        completions.setdefault(name, []).extend(batch)
    return completions


def cut_at_stop_tokens(text: str, stop_tokens: Sequence[str]) -> str:
    """MultiPL-E's `stop_at_stop_token`: cut at the earliest stop token, dropping the token itself."""
    cut = len(text)
    for token in stop_tokens:
        if not token:
            continue  # an empty token would cut everything; MultiPL-E never has one
        index = text.find(token)
        if index != -1:
            cut = min(cut, index)
    return text[:cut]

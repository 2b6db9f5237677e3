"""Cut fill-in-the-middle / next-line cases out of Elixir source files, deterministically.

Each case is `{"name", "file", "prefix", "suffix", "expected", "kind"}` with
`prefix + expected + suffix == file text`:

* `next_line`: `expected` is one whole line (indentation included, newline excluded); `prefix` is everything
  before it (so it ends with a newline) and `suffix` starts with the line's newline.
* `fim_span`: `expected` is a balanced run of up to four whitespace-separated tokens inside one line, or the
  content of two or three consecutive lines (from the end of the first line's indentation to the end of the
  last line, newline excluded).

Targets are spread over a file: its candidate lines (not blank, not a bare `end` / closing bracket /
heredoc delimiter) are split into `per_file` equal runs and one line is picked in each run. Picks come from
SHA-256 of (seed, file name, purpose), so the output depends only on the files' names and text, `per_file`
and `seed` — not on the Python version or the platform.

`python -m finetune.eval.fim_cases` rewrites `suites/fim_cases.jsonl` from `suites/fim/*.ex`.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

SUITES_DIR = Path(__file__).resolve().parent / "suites"
FIM_SOURCES_DIR = SUITES_DIR / "fim"
FIM_CASES_FILE = SUITES_DIR / "fim_cases.jsonl"
# The committed suite is cut with these; a test re-cuts it and compares.
SUITE_PER_FILE = 11
SUITE_SEED = 1729

KINDS = ("next_line", "fim_span")
# Lines that make poor targets: nothing to predict beyond closing a block.
_TRIVIAL = re.compile(r'^\s*(|end[)\],]*|[)\]}]+,?|""")\s*$')
_TOKEN = re.compile(r"\S+")


def _pick(seed: int, key: str, n: int) -> int:
    """A number in range(n), fixed by (seed, key)."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n


def is_target(line: str) -> bool:
    """Can this line (without its newline) be the target of a case?"""
    return not _TRIVIAL.match(line)


def _spread(candidates: list[int], count: int, seed: int, key: str) -> list[int]:
    """One candidate from each of `count` equal runs of `candidates` (all of them if there are fewer)."""
    if len(candidates) <= count:
        return list(candidates)
    chosen = []
    for bucket in range(count):
        start = bucket * len(candidates) // count
        stop = (bucket + 1) * len(candidates) // count
        chosen.append(candidates[start + _pick(seed, f"{key}:line:{bucket}", stop - start)])
    return chosen


def _balanced(text: str) -> bool:
    """Brackets close in order and double quotes pair up: the span is a whole expression or more."""
    depth: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in text:
        if char in "([{":
            depth.append(char)
        elif char in pairs and (not depth or depth.pop() != pairs[char]):
            return False
    return not depth and text.count('"') % 2 == 0


def _good_piece(text: str, at_end: bool) -> bool:
    """Worth predicting: a balanced expression that ends on a word or a closing bracket/quote, at least 4
    characters if it runs to the end of the line, 10 if it stops inside it."""
    return (
        len(text) >= (4 if at_end else 10)
        and (text[-1].isalnum() or text[-1] in ")]}\"'?!_")
        and _balanced(text)
    )


def _span(lines: list[str], starts: list[int], index: int, seed: int, key: str) -> tuple[int, int]:
    """(start, end) character offsets in the file of a `fim_span` around line `index`.

    Inside the line: up to four consecutive tokens that form a `_good_piece`, not the whole line. Two or three lines instead when the line offers no such
    piece, or one time in three when non-blank lines follow."""
    content = lines[index].rstrip("\n")
    tokens = [match.span() for match in _TOKEN.finditer(content)]
    pieces = [
        (tokens[i][0], tokens[j - 1][1])
        for i in range(len(tokens))
        for j in range(i + 1, min(len(tokens), i + 4) + 1)
        if (i, j) != (0, len(tokens))
    ]
    pieces = [(a, b) for a, b in pieces if _good_piece(content[a:b], at_end=b == len(content))]
    follow = 0
    while index + follow + 1 < len(lines) and follow < 2 and lines[index + follow + 1].strip():
        follow += 1
    if follow and (not pieces or _pick(seed, f"{key}:multi", 3) == 0):
        last = index + 1 + _pick(seed, f"{key}:lines", follow)
        return starts[index] + tokens[0][0], starts[last] + len(lines[last].rstrip("\n"))
    if not pieces:
        return starts[index] + tokens[0][0], starts[index] + len(content)
    a, b = pieces[_pick(seed, f"{key}:piece", len(pieces))]
    return starts[index] + a, starts[index] + b


def cut_file(path: Path, per_file: int, seed: int) -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    candidates = [i for i, line in enumerate(lines) if is_target(line.rstrip("\n"))]
    cases = []
    for number, index in enumerate(_spread(candidates, per_file, seed, path.name), start=1):
        kind = KINDS[(number - 1) % 2]
        key = f"{path.name}:{number}"
        if kind == "next_line":
            begin = starts[index]
            end = begin + len(lines[index].rstrip("\n"))
        else:
            begin, end = _span(lines, starts, index, seed, key)
        cases.append(
            {
                "name": f"{path.stem}_{number:02d}_{kind}",
                "file": path.name,
                "prefix": text[:begin],
                "suffix": text[end:],
                "expected": text[begin:end],
                "kind": kind,
            }
        )
    return cases


def cut_cases(files: list[Path], per_file: int, seed: int) -> list[dict[str, str]]:
    """Cases for each file, files in the order given, lines in file order."""
    return [case for path in files for case in cut_file(path, per_file, seed)]


def suite_sources(directory: Path = FIM_SOURCES_DIR) -> list[Path]:
    return sorted(directory.glob("*.ex"))


def dumps_cases(cases: Iterable[dict[str, str]]) -> str:
    return "".join(json.dumps(case, ensure_ascii=False) + "\n" for case in cases)


def main(argv: list[str] | None = None) -> int:
    output = Path(argv[0]) if argv else FIM_CASES_FILE
    cases = cut_cases(suite_sources(), SUITE_PER_FILE, SUITE_SEED)
    output.write_text(dumps_cases(cases), encoding="utf-8")
    print(f"{len(cases)} cases -> {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

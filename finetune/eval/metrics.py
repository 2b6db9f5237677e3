"""Metrics of generated Elixir beyond pass@k.

Static ones read the code with the server's own tree-sitter grammar and idiom rules (no execution):
parses, idiom findings per 100 lines, pipes, pattern matches. Tool ones (`compiles`, `formatted`) run
`elixirc` / `mix format` on untrusted code, so they take a `run` callable (the eval sandbox);
`tool_metrics` gives both for many files with one VM start per batch. Reference
metrics for FIM/next-line cases: exact match, edit similarity, chrF (sacrebleu).
"""

from __future__ import annotations

import re
import secrets
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import tree_sitter

from finetune.eval.sandbox import Runner
from lsp.config import IdiomSettings
from lsp.idioms.base import Rule
from lsp.idioms.engine import checked_findings
from lsp.idioms.registry import active_rules
from lsp.syntax.parser import count_errors, descendants, make_parser

# What a destructuring `=` / `<-` or a pattern in a function head looks like (not a bare variable).
_STRUCTURED = frozenset({"tuple", "list", "map", "struct", "bitstring", "string", "charlist", "atom",
                         "integer", "float", "boolean", "nil", "quoted_atom"})
_CLAUSE_OWNERS = frozenset({"case", "receive", "with", "fn"})
_DEFINITIONS = frozenset({"def", "defp", "defmacro", "defmacrop"})
ELIXIR_FOR_RULES = (1, 14)  # the rule set of the oldest supported Elixir: findings stay comparable


@dataclass(frozen=True)
class StaticMetrics:
    parses: bool  # no ERROR/MISSING node
    syntax_errors: int
    lines: int  # non-blank lines
    idiom_findings: int
    idiom_per_100_lines: float
    pipes: int
    pattern_matches: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@cache
def default_rules() -> tuple[Rule, ...]:
    return active_rules(IdiomSettings(), ELIXIR_FOR_RULES)


def _text(node: tree_sitter.Node) -> str:
    return node.text.decode("utf-8", "replace") if node.text is not None else ""


def _call_name(node: tree_sitter.Node) -> str:
    target = node.child_by_field_name("target")
    return _text(target) if target is not None and target.type == "identifier" else ""


def _operator(node: tree_sitter.Node) -> str:
    operator = node.child_by_field_name("operator")
    return _text(operator) if operator is not None else ""


def _structured(node: tree_sitter.Node | None) -> bool:
    if node is None:
        return False
    if node.type == "binary_operator" and _operator(node) in ("=", "|", "<>"):
        return True  # `{:ok, x} = y` as an argument, `[h | t]`, `"a" <> rest`
    return node.type in _STRUCTURED


def _head_patterns(definition: tree_sitter.Node) -> int:
    """Structured arguments in a def/defp head: `def f({:ok, x}, [h | t])` counts 2."""
    arguments = next((c for c in definition.named_children if c.type == "arguments"), None)
    head = arguments.named_children[0] if arguments is not None and arguments.named_children else None
    if head is not None and head.type == "binary_operator" and _operator(head) == "when":
        head = head.child_by_field_name("left")
    if head is None or head.type != "call":
        return 0
    params = next((c for c in head.named_children if c.type == "arguments"), None)
    return sum(_structured(p) for p in params.named_children) if params is not None else 0


def _in_definition_head(node: tree_sitter.Node) -> bool:
    """`node` is an argument of the head call of a def/defp (`def f(node)`, also under `when`)."""
    head = node.parent.parent if node.parent is not None and node.parent.type == "arguments" else None
    if head is None or head.type != "call":
        return False
    outer = head.parent
    if outer is not None and outer.type == "binary_operator" and _operator(outer) == "when":
        outer = outer.parent
    definition = outer.parent if outer is not None and outer.type == "arguments" else None
    return definition is not None and definition.type == "call" and _call_name(definition) in _DEFINITIONS


def _is_match_clause(clause: tree_sitter.Node) -> bool:
    """A `->` clause that matches a pattern: of an fn, or of case/receive/with (not cond)."""
    parent = clause.parent
    if parent is None:
        return False
    if parent.type == "anonymous_function":
        return True
    owner = parent.parent
    return owner is not None and owner.type == "call" and _call_name(owner) in _CLAUSE_OWNERS


def count_usage(root: tree_sitter.Node) -> tuple[int, int]:
    """(pipes, pattern matches). A pattern match is a destructuring `=` or `<-` (left side not a bare
    variable), a clause of case/receive/with-else/fn, or a structured argument in a function head."""
    pipes = matches = 0
    for node in descendants(root):
        if node.type == "binary_operator":
            operator = _operator(node)
            if operator == "|>":
                pipes += 1
            elif operator in ("=", "<-") and _structured(node.child_by_field_name("left")):
                # `def f({:ok, x} = y)` is counted once, as a pattern in the head.
                matches += not _in_definition_head(node)
        elif node.type == "stab_clause":
            matches += _is_match_clause(node)
        elif node.type == "call" and _call_name(node) in _DEFINITIONS:
            matches += _head_patterns(node)
    return pipes, matches


def static_metrics(code: str, rules: Sequence[Rule] | None = None) -> StaticMetrics:
    source = code.encode("utf-8")
    tree = make_parser().parse(source)
    errors = count_errors(tree.root_node)
    lines = sum(1 for line in code.splitlines() if line.strip())
    findings = len(checked_findings(rules if rules is not None else default_rules(), tree, source))
    pipes, matches = count_usage(tree.root_node)
    return StaticMetrics(
        parses=errors == 0,
        syntax_errors=errors,
        lines=lines,
        idiom_findings=findings,
        idiom_per_100_lines=round(100.0 * findings / lines, 3) if lines else 0.0,
        pipes=pipes,
        pattern_matches=matches,
    )


# -- tools (untrusted code: through the sandbox's runner) -----------------------------------------------


def compiles(code: str, run: Runner) -> tuple[bool, str]:
    """`elixirc --warnings-as-errors`: any warning (unused variable, undefined function…) fails."""
    exit_code, output = run(["elixirc", "--warnings-as-errors", "-o", "ebin", "code.ex"], {"code.ex": code})
    return exit_code == 0, output


def formatted(code: str, run: Runner) -> bool:
    """`mix format --check-formatted` with the default formatter options (no project)."""
    exit_code, _output = run(["mix", "format", "--check-formatted", "code.ex"], {"code.ex": code})
    return exit_code == 0


@dataclass(frozen=True)
class ToolMetrics:
    compiles: bool  # as `compiles`
    formatted: bool  # as `formatted`
    error: str = ""  # the first compile error (or warning), one line; "" when it compiles


TOOL_CHECK = Path(__file__).with_name("tool_check.exs")


@cache
def _tool_check_script() -> str:
    return TOOL_CHECK.read_text(encoding="utf-8")


def tool_metrics(
    codes: Sequence[str],
    run: Runner,
    batch: int = 32,
    file_timeout_s: float = 5.0,
    generated_from: Sequence[int] | None = None,
) -> list[ToolMetrics]:
    """`compiles` and `formatted` of every code, `batch` files per sandbox run, all checked in one VM
    (tool_check.exs) instead of two VM starts per file. `generated_from[i]` (a 0-based line) makes
    `formatted` judge only the lines from there on: a completion is formatted when `mix format` changes
    none of its lines, whatever it would change in the given prompt above it. Without it, the whole
    file must be formatted, as `mix format --check-formatted` requires.

    Each file gets `file_timeout_s` per check; its modules are unloaded before the next. If the VM dies
    (System.halt, a limit of `run`) or its output is cut short, what it printed stands and the rest runs
    again: the first file without a verdict alone, which is then, if it dies again, a failure (unlike
    elixirc, which exits 0 on a compile-time System.halt(0)). So a runner with small limits stays correct, only slower; for speed give it room for
    a whole batch, e.g. make_runner(Limits(timeout_s=120, cpu_s=120, output_chars=16384))."""
    format_flags: dict[int, bool] = {}
    compiled: dict[int, tuple[bool, str]] = {}
    queue = deque(list(range(start, min(start + batch, len(codes)))) for start in range(0, len(codes), batch))
    while queue:
        group = queue.popleft()
        starts = [generated_from[i] if generated_from is not None else 0 for i in group]
        exit_code, flags, verdicts = _check_batch([codes[i] for i in group], starts, run, file_timeout_s)
        for position, index in enumerate(group):
            if position < len(flags):
                format_flags.setdefault(index, flags[position])
            if position in verdicts:
                compiled[index] = verdicts[position]
        missing = [index for index in group if index not in compiled]
        if len(group) == 1 and missing:
            ending = "timed out" if exit_code is None else f"exited with code {exit_code}"
            compiled[group[0]] = (False, f"the VM {ending} while compiling")
        elif missing:
            # The first unanswered file may have killed the VM (or a process an earlier one left did):
            # alone it shows which.
            if missing[1:]:
                queue.appendleft(missing[1:])
            queue.appendleft(missing[:1])
    return [ToolMetrics(compiled[i][0], format_flags.get(i, False), compiled[i][1]) for i in range(len(codes))]


def _check_batch(
    codes: Sequence[str], starts: Sequence[int], run: Runner, file_timeout_s: float
) -> tuple[int | None, list[bool], dict[int, tuple[bool, str]]]:
    """One run of tool_check.exs: (exit code, formatted per file, position -> (compiles, error))."""
    nonce = secrets.token_hex(6)  # user code cannot print a verdict line by chance
    files = {"tool_check.exs": _tool_check_script()}
    files.update({f"{position}/code.ex": code for position, code in enumerate(codes)})
    files.update({f"{position}/from": str(start) for position, start in enumerate(starts)})
    argv = ["elixir", "tool_check.exs", nonce, str(round(file_timeout_s * 1000)), *map(str, range(len(codes)))]
    exit_code, output = run(argv, files)
    flags_line = re.search(rf"{nonce} F ([01]*) {nonce}", output)
    flags = [flag == "1" for flag in flags_line.group(1)] if flags_line else []
    verdicts = {
        int(found.group(1)): (found.group(2) == "1", found.group(3))
        for found in re.finditer(rf"{nonce} C (\d+) ([01]) (.*?) {nonce}", output)
    }
    return exit_code, flags, verdicts


# -- reference metrics (FIM / next line) ------------------------------------------------------------------


def exact_match(hypothesis: str, reference: str) -> bool:
    return hypothesis.rstrip() == reference.rstrip()


def edit_similarity(hypothesis: str, reference: str) -> float:
    """1 − Levenshtein distance / length of the longer string (1.0 for two empty strings)."""
    a, b = hypothesis.rstrip(), reference.rstrip()
    if not a and not b:
        return 1.0
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return 1.0 - previous[-1] / max(len(a), len(b))


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (sacrebleu's defaults: character 6-grams, β = 2), 0–100."""
    from sacrebleu.metrics import CHRF

    return float(CHRF().corpus_score(list(hypotheses), [list(references)]).score)


def sentence_chrf(hypothesis: str, reference: str) -> float:
    from sacrebleu.metrics import CHRF

    return float(CHRF().sentence_score(hypothesis, [reference]).score)

"""Fix-all over realistic modules written for this project (tests/idioms/corpus): the result parses,
compiles with the real Elixir compiler, and a second fix-all changes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lsp.config import IdiomSettings
from lsp.idioms.base import Safety
from lsp.idioms.elixir_check import ElixirChecker
from lsp.idioms.engine import fix_all
from lsp.idioms.registry import DEFAULT_ELIXIR_VERSION, active_rules
from lsp.syntax.parser import count_errors, make_parser

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.ex"))


@pytest.fixture(scope="module")
def checker():
    if shutil.which("elixir") is None:
        pytest.skip("needs Debian's elixir (make test installs it)")
    checker = ElixirChecker(timeout_s=60)
    yield checker
    checker.close()


def _rules(classes: set[Safety], version: tuple[int, int]):
    return [r for r in active_rules(IdiomSettings(), version) if r.safety in classes]


@pytest.mark.parametrize("classes", [{Safety.SAFE}, {Safety.SAFE, Safety.MOSTLY_SAFE}], ids=["safe", "mostly-safe"])
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_fix_all_parses_compiles_and_is_stable(path, classes, checker):
    rules = _rules(classes, checker.version() or DEFAULT_ELIXIR_VERSION)
    source = path.read_bytes()
    assert checker.compiles(source.decode()).ok, "the corpus file itself must compile"
    parser = make_parser()
    result = fix_all(rules, parser.parse(source), source)
    assert len(result.applied) >= 3, f"fix-all found too little to do in {path.name}: {result.applied}"
    fixed = result.source.decode()
    assert count_errors(parser.parse(result.source).root_node) == 0
    compiled = checker.compiles(fixed)
    assert compiled.ok, f"{path.name} no longer compiles after {result.applied}: {compiled.message}\n{fixed}"
    again = fix_all(rules, parser.parse(result.source), result.source)
    assert again.applied == (), f"not stable: a second pass applied {again.applied}"


def test_corpus_is_there():
    assert len(CORPUS) >= 6

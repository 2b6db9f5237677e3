
from lsp.idioms.rules.with_redundant_last_clause import RULE
from tests.idioms.harness import one_pass


def test_whitespace_differences_do_not_matter():
    assert one_pass(RULE, "with {:ok,b} <- f(), do: {:ok, b}") == "f()"


def test_operand_position_gets_parentheses():
    assert one_pass(RULE, "x = (with y <- a || b, do: y) && c") == "x = (a || b) && c"


def test_underscored_or_pinned_patterns_are_left_alone():
    for source in ("with {:ok, _} <- f(), do: {:ok, _}", "with ^x <- f(), do: ^x"):
        assert one_pass(RULE, source) == source


def test_comment_between_clauses_is_kept_or_skipped():
    source = "with {:ok, a} <- foo(),\n     # then bar\n     {:ok, b} <- bar(a) do\n  {:ok, b}\nend"
    assert one_pass(RULE, source) == source

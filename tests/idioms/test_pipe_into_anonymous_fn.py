
from lsp.idioms.rules.pipe_into_anonymous_fn import RULE
from tests.idioms.harness import finding_count, one_pass


def test_multi_clause_fn_keeps_its_layout():
    before = "nil |> (fn\n  nil -> :none\n  x -> x\nend).()"
    assert one_pass(RULE, before) == "nil |> then(fn\n  nil -> :none\n  x -> x\nend)"


def test_comment_inside_the_parentheses_blocks_the_rewrite():
    assert finding_count(RULE, "x |> (# why\n fn a -> a end).()") == 0


def test_needs_elixir_1_12():
    assert RULE.min_elixir == (1, 12)

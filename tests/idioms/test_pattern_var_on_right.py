
from lsp.idioms.rules.pattern_var_on_right import RULE
from tests.idioms.harness import finding_count, one_pass


def test_unicode_variable_and_multiple_params():
    source = "fn café = %{}, x = {_, _} -> {café, x} end"
    assert one_pass(RULE, source) == "fn %{} = café, {_, _} = x -> {café, x} end"


def test_comment_inside_binding_blocks_rewrite():
    assert finding_count(RULE, "def f(bar = %{\n  # why\n  a: 1\n}), do: bar") == 0


def test_else_clause_of_with():
    source = "with {:ok, x} <- f() do\n  x\nelse\n  err = {:error, _} -> err\nend"
    assert one_pass(RULE, source) == "with {:ok, x} <- f() do\n  x\nelse\n  {:error, _} = err -> err\nend"

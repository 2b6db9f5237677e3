
from lsp.idioms.rules.with_identity_else import RULE
from tests.idioms.harness import one_pass


def test_guarded_identity_is_not_identity():
    source = "with {:ok, a} <- f() do\n  a\nelse\n  e when is_atom(e) -> e\nend"
    assert one_pass(RULE, source) == source


def test_one_line_block_form():
    assert one_pass(RULE, "with {:ok, a} <- f() do a else e -> e end") == "with {:ok, a} <- f() do a end"

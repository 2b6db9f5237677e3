
from lsp.idioms.rules.if_else_nil import RULE
from tests.idioms.harness import one_pass


def test_empty_parenthesised_else_is_nil_too():
    assert one_pass(RULE, "if a, do: b, else: ()") == "if a, do: b"


def test_nested_if_inside_else_nil():
    source = "if a do\n  if b, do: 1, else: nil\nelse\n  nil\nend"
    assert one_pass(RULE, one_pass(RULE, source)) == "if a do\n  if b, do: 1\nend"

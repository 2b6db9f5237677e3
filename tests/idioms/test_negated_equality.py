
from lsp.idioms.rules.negated_equality import RULE
from tests.idioms.harness import finding_count, one_pass


def test_nested_negation_is_stable():
    once = one_pass(RULE, "!(a == !(b == c))")
    assert once == "a != !(b == c)"
    assert one_pass(RULE, once) == once


def test_comment_inside_parentheses_blocks_rewrite():
    assert finding_count(RULE, "not (\n  # why\n  a == b\n)") == 0

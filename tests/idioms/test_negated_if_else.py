
from lsp.idioms.rules.negated_if_else import RULE
from tests.idioms.harness import one_pass


def test_one_line_block_form():
    assert one_pass(RULE, "if !a do 1 else 2 end") == "if a do 2 else 1 end"


def test_empty_else_block_is_not_swapped():
    source = "if !a do\n  1\nelse\nend"
    assert one_pass(RULE, source) == source


def test_branch_on_the_do_line_and_the_other_below_is_left_alone():
    source = "if !a do 1\nelse\n  2\nend"
    assert one_pass(RULE, source) == source


from lsp.idioms.rules.case_boolean import RULE
from tests.idioms.harness import one_pass


def test_leading_comment_goes_into_the_then_branch():
    source = "case x do\n  # the usual case\n  true -> 1\n  false -> 2\nend"
    assert one_pass(RULE, source) == "if x do\n  # the usual case\n  1\nelse\n  2\nend"


def test_piped_case_inside_a_longer_chain():
    source = "x |> case do\n  true -> 1\n  false -> 2\nend |> inspect()"
    assert one_pass(RULE, source) == "if x do\n  1\nelse\n  2\nend |> inspect()"


def test_three_clauses_are_left_alone():
    source = "case x do\n  true -> 1\n  false -> 2\n  nil -> 3\nend"
    assert one_pass(RULE, source) == source

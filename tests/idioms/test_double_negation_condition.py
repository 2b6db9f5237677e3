
from lsp.idioms.rules.double_negation_condition import RULE
from tests.idioms.harness import one_pass


def test_nested_conditions_are_both_rewritten():
    source = "if !!a do\n  if !!b, do: 1\nend"
    assert one_pass(RULE, one_pass(RULE, source)) == "if a do\n  if b, do: 1\nend"

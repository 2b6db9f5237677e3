
from lsp.idioms.rules.unless_negated import RULE
from tests.idioms.harness import one_pass


def test_double_negation_is_left_to_its_own_rule():
    assert one_pass(RULE, "unless !!x, do: y") == "unless !!x, do: y"


def test_multi_line_condition_is_left_alone():
    source = "unless !(a and\n          b) do\n  run()\nend"
    assert one_pass(RULE, source) == source

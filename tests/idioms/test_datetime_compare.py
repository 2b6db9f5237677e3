
from lsp.idioms.rules.datetime_compare import RULE
from tests.idioms.harness import finding_count


def test_comment_between_operator_and_result_blocks_rewrite():
    assert finding_count(RULE, "DateTime.compare(a, b) ==\n  # later\n  :gt") == 0


def test_extra_arguments_do_not_fire():
    assert finding_count(RULE, "DateTime.compare(a, b, c) == :gt") == 0


from lsp.idioms.rules.alias_sort import RULE
from tests.idioms.harness import finding_count


def test_one_finding_per_run():
    assert finding_count(RULE, "alias C\nalias B\nalias A\n\nalias E\nalias D") == 2


def test_trailing_comment_on_an_alias_line_ends_the_run():
    assert finding_count(RULE, "alias B # keep\nalias A") == 0

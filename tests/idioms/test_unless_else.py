
from lsp.idioms.rules.unless_else import RULE
from tests.idioms.harness import finding_count, one_pass


def test_nested_unless_reaches_a_fixed_point_in_two_passes():
    source = "unless a do\n  unless b, do: 1, else: 2\nelse\n  3\nend"
    twice = one_pass(RULE, one_pass(RULE, source))
    assert twice == "if a do\n  3\nelse\n  if b, do: 2, else: 1\nend"


def test_unicode_branches_keep_their_bytes():
    source = "unless café?, do: \"naïve\", else: \"größe\""
    assert one_pass(RULE, source) == "if café?, do: \"größe\", else: \"naïve\""


def test_does_not_fire_with_other_block_kinds_or_arguments():
    assert finding_count(RULE, "unless a, b, do: 1, else: 2") == 0
    assert finding_count(RULE, "unless a, do: 1, else: 2, foo: 3") == 0

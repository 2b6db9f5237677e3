
from lsp.idioms.rules.enum_map_new import RULE
from tests.idioms.harness import one_pass


def test_into_with_a_comment_inside_is_left_alone():
    source = "xs\n|> Enum.map(&f/1)\n# into a map\n|> Enum.into(%{})"
    assert one_pass(RULE, source) == source

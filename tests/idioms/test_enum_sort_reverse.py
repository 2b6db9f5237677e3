
from lsp.idioms.rules.enum_sort_reverse import RULE
from tests.idioms.harness import one_pass


def test_sort_by_desc_flips_back_to_the_default():
    assert one_pass(RULE, "xs |> Enum.sort_by(&f/1, :desc) |> Enum.reverse()") == "xs |> Enum.sort_by(&f/1)"


def test_comment_between_steps_blocks_the_rewrite():
    source = "xs\n|> Enum.sort()\n# biggest first\n|> Enum.reverse()"
    assert one_pass(RULE, source) == source

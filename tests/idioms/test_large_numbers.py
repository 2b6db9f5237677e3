
from lsp.idioms.rules.large_numbers import RULE
from tests.idioms.harness import finding_count, one_pass


def test_several_numbers_and_negative():
    assert one_pass(RULE, "[-1_0000, 123456, 12_34]") == "[-10_000, 123_456, 1_234]"


def test_strings_and_charlists_untouched():
    assert finding_count(RULE, 'x = "123456" <> ~c"99999" <> ?a') == 0


from lsp.idioms.rules.enum_count_zero import RULE
from tests.idioms.harness import one_pass


def test_every_zero_comparison_shape():
    cases = {
        "Enum.count(xs) === 0": "Enum.empty?(xs)",
        "Enum.count(xs) != 0": "not Enum.empty?(xs)",
        "0 == Enum.count(xs)": "Enum.empty?(xs)",
        "0 < Enum.count(xs)": "not Enum.empty?(xs)",
        "xs |> Enum.count() == 0": "Enum.empty?(xs)",
    }
    for before, after in cases.items():
        assert one_pass(RULE, before) == after


def test_zero_on_the_wrong_side_of_an_ordering_is_not_an_emptiness_test():
    for source in ("0 > Enum.count(xs)", "Enum.count(xs) < 0", "Enum.count(xs) == 0.0"):
        assert one_pass(RULE, source) == source


def test_comment_inside_keeps_the_code():
    source = "Enum.count(xs) # how many\n== 0"
    assert one_pass(RULE, source) == source

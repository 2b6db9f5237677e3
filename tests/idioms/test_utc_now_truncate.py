
from lsp.idioms.rules.utc_now_truncate import RULE
from tests.idioms.harness import finding_count


def test_unknown_unit_and_truncate_of_other_values_are_left():
    assert finding_count(RULE, "DateTime.utc_now() |> DateTime.truncate(:nanosecond)") == 0
    assert finding_count(RULE, "created_at |> DateTime.truncate(:second)") == 0


def test_piped_three_argument_truncate_is_left():
    assert finding_count(RULE, "x |> DateTime.truncate(DateTime.utc_now(), :second)") == 0


def test_needs_elixir_1_15():
    assert RULE.min_elixir == (1, 15)

import pytest

from lsp.idioms.rules.map_merge_single_key import RULE
from tests.idioms.harness import assert_example, assert_well_formed


def test_well_formed():
    assert_well_formed(RULE)


@pytest.mark.parametrize("example", RULE.examples, ids=lambda e: e.before[:40])
def test_example(example):
    assert_example(RULE, example)

"""The claims tables' verdict rule (benchmarks/_claims.py), case by case: the
rule is what docs/benchmarks/reproduced.md quotes, so each branch is pinned."""

import sys

import numpy as np
import pytest

from support.launch import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import _claims as C  # noqa: E402


@pytest.mark.parametrize("holds, expected", [
    ({1e-3: True, 1e-4: True, 1e-6: True}, "yes"),
    ({1e-3: True, 1e-4: False, 1e-6: False}, "partly"),
    ({1e-3: True, 1e-4: None, 1e-6: True}, "partly"),      # a target not measured: no yes
    ({1e-3: False, 1e-4: False, 1e-6: False}, "no"),
    ({1e-3: False, 1e-4: None, 1e-6: None}, "not measured"),
    ({}, "not measured"),
])
def test_verdict_needs_every_target_of_the_papers_figure(holds, expected):
    assert C.verdict(holds) == expected


def test_a_stochastic_claim_needs_ten_seeds_the_median_and_three_quarters():
    assert C.holds_over_seeds([1.0] * 9) is None                   # too few seeds
    assert C.holds_over_seeds([1.0] * 8 + [-1.0] * 2) is True      # 80% and median > 0
    assert C.holds_over_seeds([1.0] * 7 + [-1.0] * 3) is False     # 70% < 3/4
    assert C.holds_over_seeds([np.nan] * 10) is None                # nothing reached


def test_spread_is_median_min_max_over_the_reached_seeds():
    assert C.spread([3, 1, 2, np.nan]) == "2 (1-3)"
    assert C.spread([np.nan]) == "not reached"


def test_labels_never_pass_a_variant_off_as_the_papers():
    assert C.label(C.PAPER) == "as the paper writes it"
    assert "ours" in C.label(C.DEFAULT)
    assert C.label("restart from the best") == "restart from the best (not the paper's)"

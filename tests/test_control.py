"""Typed control values (:mod:`distnewton.algorithms.control`): named fields in the
float64 down vector of a round, one float each, the same floats the positional
vectors carried (FedNL's [t, alpha, seed, flag (, verdict, trial)])."""

from dataclasses import dataclass

import numpy as np
import pytest

from distnewton.algorithms.control import Control
from distnewton.algorithms.fednl.clients import AheadHeader, PPHeader, RoundHeader


@dataclass(frozen=True)
class Knobs(Control):
    t: int
    step: float
    on: bool
    cap: float | None


def test_fields_round_trip_with_their_types():
    k = Knobs(t=7, step=0.1, on=True, cap=None)
    buf = k.pack()
    assert buf.dtype == np.float64 and buf.size == Knobs.size() == 4
    np.testing.assert_array_equal(buf, [7.0, 0.1, 1.0, np.nan])
    back = Knobs.unpack(buf)
    assert back == k and type(back.t) is int and type(back.on) is bool
    assert Knobs.unpack(Knobs(2**53, 1e-300, False, 3.5).pack()) == Knobs(2**53, 1e-300, False, 3.5)


def test_a_buffer_of_another_size_is_refused():
    with pytest.raises(ValueError, match="Knobs: expected 4 floats, got 3"):
        Knobs.unpack(np.zeros(3))


def test_fednl_headers_are_the_positional_layout():
    np.testing.assert_array_equal(RoundHeader(t=3, alpha=0.5, seed=11, gap=True).pack(),
                                  [3.0, 0.5, 11.0, 1.0])
    np.testing.assert_array_equal(PPHeader(t=3, alpha=0.5, seed=11, first=False).pack(),
                                  [3.0, 0.5, 11.0, 0.0])
    ahead = AheadHeader(t=3, alpha=0.5, seed=11, gap=False, verdict=2, trial=True)
    np.testing.assert_array_equal(ahead.pack(), [3.0, 0.5, 11.0, 0.0, 2.0, 1.0])
    assert AheadHeader.unpack(ahead.pack()) == ahead

"""``algorithm.preset``: a named set of an algorithm's keys (the paper's variant
one key away), filled in by the config resolution; a key given beside it wins."""

import pytest

from distnewton.algorithms.base import Algorithm
from distnewton.config import resolve
from distnewton.errors import UserError
from distnewton.params import FLOAT, INT, Param, preset_param


class Toy(Algorithm):
    name = "toy"
    presets = {"paper": {"eta": 0.5, "batch": 1}}
    params = {"eta": Param(FLOAT, 1.0, "step"), "batch": Param(INT, 8, "rows"),
              "preset": preset_param(presets)}


REGISTRY = {"toy": Toy}


def algorithm(**keys):
    raw = {"data": {"train": "x.svm"}, "algorithm": {"name": "toy", **keys}}
    return dict(resolve(raw, algorithms=REGISTRY)["algorithm"])


def test_no_preset_keeps_the_defaults():
    assert algorithm() == {"name": "toy", "eta": 1.0, "batch": 8, "preset": None}


def test_the_preset_sets_its_keys():
    assert algorithm(preset="paper") == {"name": "toy", "eta": 0.5, "batch": 1,
                                         "preset": "paper"}


def test_a_key_beside_the_preset_wins():
    assert algorithm(preset="paper", batch=32)["batch"] == 32
    assert algorithm(preset="paper", batch=32)["eta"] == 0.5


def test_an_unknown_preset_is_a_one_line_error_naming_the_key():
    with pytest.raises(UserError, match=r"^algorithm\.preset: must be one of paper, got 'papr'$") as e:
        algorithm(preset="papr")
    assert "\n" not in str(e.value)


def test_the_key_documents_each_preset():
    doc = Toy.params["preset"].doc
    assert "'paper': eta: 0.5, batch: 1" in doc

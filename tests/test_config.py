"""Config validation: every problem is a UserError naming the key."""

import pytest

from distnewton.config import load_yaml, parse_override, resolve
from distnewton.errors import UserError

BASE = {"data": {"train": "x.svm"}, "algorithm": {"name": "giant"}}


def err(raw, overrides=()):
    with pytest.raises(UserError) as e:
        resolve(raw, overrides)
    return str(e.value)


def test_defaults_are_filled():
    cfg = resolve(BASE)
    assert cfg["model"]["lambda"] == "1/n"
    assert cfg["algorithm"]["solver"] == "auto"
    assert cfg["run"]["backend"] == "auto"


def test_unknown_key_names_it_and_suggests():
    msg = err({**BASE, "run": {"max_round": 3}})
    assert msg == "run.max_round: unknown key (did you mean 'max_rounds'?)"
    assert "algorithm.bta: unknown key (did you mean 'beta'?)" == err(
        {**BASE, "algorithm": {"name": "giant", "bta": 0.1}})
    assert "unknown section 'modle'" in err({**BASE, "modle": {}})


def test_unknown_algorithm_suggests():
    assert "did you mean 'giant'" in err({**BASE, "algorithm": {"name": "gaint"}})


@pytest.mark.parametrize("section,key,value,expect", [
    ("model", "lambda", -1.0, "model.lambda: must be >= 0"),
    ("model", "lambda", "1/m", "model.lambda: must be a number >= 0 or '1/n'"),
    ("run", "max_rounds", 0, "run.max_rounds: must be >= 1, got 0"),
    ("run", "max_rounds", "ten", "run.max_rounds: expected an integer"),
    ("algorithm", "beta", 0.9, "algorithm.beta: must be in (0.0, 0.5], got 0.9"),
    ("data", "partition", "random", "data.partition: must be one of iid, contiguous, label_skew"),
    ("model", "fit_intercept", 1, "model.fit_intercept: expected true/false"),
    ("run", "grad_rtol", True, "run.grad_rtol: expected a number"),
])
def test_bad_values_name_the_key(section, key, value, expect):
    raw = {**BASE, section: {**BASE.get(section, {}), key: value}}
    assert expect in err(raw)


def test_overrides_apply_and_parse_yaml():
    cfg = resolve(BASE, ["run.max_rounds=7", "model.lambda=0.5", "algorithm.solver=cg"])
    assert cfg["run"]["max_rounds"] == 7 and cfg["model"]["lambda"] == 0.5
    assert cfg["algorithm"]["solver"] == "cg"
    assert parse_override("data.test=") == ("data", "test", None)
    assert "expected section.key=value" in err(BASE, ["max_rounds=3"])
    assert "run.max_roundz: unknown key" in err(BASE, ["run.max_roundz=3"])


def test_target_subopt_needs_f_star():
    assert "run.target_subopt: needs run.f_star" in err({**BASE, "run": {"target_subopt": 1e-6}})


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("data:\n  train: a\n  test: [unclosed\nrun: {}\n")
    with pytest.raises(UserError, match=r"bad.yaml:\d+: YAML syntax error"):
        load_yaml(str(p))
    with pytest.raises(UserError, match="no such config file"):
        load_yaml(str(tmp_path / "missing.yaml"))

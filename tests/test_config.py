"""Config validation: every problem is a UserError naming the key."""

import pytest

import copy
import pickle

import yaml

from distnewton.config import (SCHEMA, SECTION_CLASSES, load_yaml, override, parse_override,
                               resolve)
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
    o = parse_override("data.test=")
    assert (o.section, o.key, o.value, o.append) == ("data", "test", None, False)
    o = parse_override("run.plugins+=mod")
    assert (o.section, o.key, o.value, o.append) == ("run", "plugins", "mod", True)
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


def test_the_resolved_config_is_typed_and_keeps_the_dict_shape():
    cfg = resolve({**BASE, "model": {"lambda": 0.25}, "run": {"max_rounds": 9}})
    assert cfg.run.max_rounds == cfg["run"]["max_rounds"] == 9
    assert cfg.model.lambda_ == cfg["model"]["lambda"] == 0.25   # a keyword: lambda_
    assert cfg.algorithm.name == "giant" and "name" not in cfg.algorithm.params
    assert cfg.algorithm.params["solver"] == "auto"
    assert list(cfg) == ["data", "model", "run", "output", "algorithm"]
    for name, spec in SCHEMA.items():            # every key, with its default
        assert isinstance(cfg[name], SECTION_CLASSES[name]) and list(cfg[name]) == list(spec)
    assert cfg.output.to_dict() == {"path": None, "overwrite": False} == cfg.output
    cfg["run"]["workers"] = 3                    # item assignment sets the attribute
    assert cfg.run.workers == 3
    with pytest.raises(KeyError):
        cfg["run"]["no_such_key"] = 1
    plain = cfg.to_dict()
    assert type(plain["run"]) is dict and yaml.safe_load(yaml.safe_dump(plain)) == plain
    for other in (pickle.loads(pickle.dumps(cfg)), copy.deepcopy(cfg)):   # MPI bcast
        assert other.to_dict() == plain and other.run.workers == 3
    assert resolve(cfg).to_dict() == plain        # a resolved config resolves to itself


def test_one_override_path_for_the_cli_and_the_api():
    cfg = resolve(BASE, [override("output.path", "true"), override("run.workers", 2),
                         override("run.plugins", "json", append=True),
                         "run.plugins+=json"])
    assert cfg.output.path == "true"             # a Python value: never re-read as YAML
    assert cfg.run.workers == 2 and cfg.run.plugins == ["json"]
    assert "set nosuch.key: unknown section" in err(BASE, [override("nosuch.key", 1)])
    assert err(BASE, [override("run.workers", 0, "--workers")]) == \
        "run.workers: must be >= 1, got 0"

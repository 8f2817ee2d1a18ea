"""The bad-input corpus (tests/bad_inputs/cases.yaml): every case exits with its
code and one line naming the file and line, key or argument, and leaves no
result file behind.  Runs the real CLI in-process (click's runner)."""

import copy
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from distnewton.cli import main
from support.corpus import expand

CORPUS = yaml.safe_load((Path(__file__).parent / "bad_inputs" / "cases.yaml").read_text())
CASES = CORPUS["cases"]


def merge(base, extra):
    out = copy.deepcopy(base)
    for section, values in (extra or {}).items():
        out[section] = {**out.get(section, {}), **values}
    return out


def test_every_case_expects_a_named_location_and_covers_each_kind():
    """The corpus's own checks: each expected message names where the input is bad
    (a file path, a config key ``section.key``, a section, or a command-line
    option), case names are unique, and every kind of input has cases: LIBSVM
    lines, config files, config keys, command-line options, output paths."""
    import re
    located = re.compile(r"\{tmp\}/|\b[a-z_]+\.[a-zA-Z_]+\b|section '|--[a-z]|workers|"
                         r"CONFIG file")
    names = [c["name"] for c in CASES]
    assert len(set(names)) == len(names)
    for case in CASES:
        assert located.search(case["message"]), case["name"]
    messages = [c["message"] for c in CASES]
    kinds = {"libsvm line": r"data\.svm:\d+:", "config file": r"c\.yaml:",
             "config key": r"^(data|model|algorithm|run)\.", "option": r"^--",
             "output path": r"out\.h5|adir"}
    for kind, pattern in kinds.items():
        assert any(re.search(pattern, m) for m in messages), kind


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_input(tmp_path, case):
    (tmp_path / "data.svm").write_text(case.get("data", "1 1:0.5\n-1 2:0.3\n1 1:1\n-1 2:1\n"))
    for name, text in case.get("files", {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    if "raw_config" in case:
        (tmp_path / "c.yaml").write_text(case["raw_config"])
    else:
        cfg = expand(merge(CORPUS["defaults"]["config"], case.get("config")), tmp_path)
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    args = expand(case.get("args", CORPUS["defaults"]["args"]), tmp_path)
    before = set(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    res = CliRunner().invoke(main, args)
    assert res.exit_code == case.get("code", 2), (res.output, res.exception)
    lines = [l for l in res.output.splitlines() if l.strip()]
    assert len(lines) == 1, res.output
    assert expand(case["message"], tmp_path) in lines[0]
    assert lines[0].startswith("distnewton: error: ")
    after = set(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before, f"left behind: {after - before}"

"""``distnewton config [SECTION]``: the configuration reference generated from the
schema (every key with type, default and meaning), and the docs page built from it."""

import importlib.util
import re

import pytest
import yaml
from click.testing import CliRunner

from distnewton import confdoc
from distnewton.algorithms import ALGORITHMS
from distnewton.cli import main
from distnewton.config import SCHEMA
from support.launch import ROOT, cli

KEY_LINE = re.compile(r"^  (\w+): (.+), default (.*)$")


def invoke(*args):
    return CliRunner().invoke(main, ["config", *args])


def parse_text(text):
    """{block title: {key: default text}} from the terminal reference."""
    out, block = {}, None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            named = re.match(r"algorithm \(name: (\w+)\): ", line)
            block = named.group(1) if named else line.split(":", 1)[0]
            out[block] = {}
        elif KEY_LINE.match(line):
            key, _, default = KEY_LINE.match(line).groups()
            out[block][key] = default
    return out


def same_default(text, default):
    """The printed default, read as YAML (as a config file would), is the Param's."""
    value = yaml.safe_load(text)
    if isinstance(default, float) and isinstance(value, str):
        value = float(value)            # YAML 1.1 reads 1e-08 as a string; config accepts it
    return value == default and type(value) is type(default)


def expected():
    blocks = {section: spec for section, spec in SCHEMA.items()}
    blocks.update({name: ALGORITHMS[name].params for name in ALGORITHMS})
    return blocks


def test_every_key_appears_with_its_default():
    res = invoke()
    assert res.exit_code == 0, res.output
    printed = parse_text(res.output)
    for block, params in expected().items():
        assert set(printed[block]) == set(params), block
        for key, p in params.items():
            assert same_default(printed[block][key], p.default), (block, key,
                                                                 printed[block][key], p.default)
    assert printed["algorithm"] == {"name": "required"}


def test_meanings_types_and_choices_are_printed():
    text = invoke("run").output
    p = SCHEMA["run"]["backend"]
    assert "  backend: string, default auto" in text
    assert p.doc in " ".join(text.split())
    assert "[one of: auto, mpi, sim]" in text
    assert "  max_iterations: integer or null, default null" in text
    assert "  master_shard: string or bool, default auto" in text


def test_section_filter():
    data = parse_text(invoke("data").output)
    assert list(data) == ["data"] and set(data["data"]) == set(SCHEMA["data"])
    giant = parse_text(invoke("giant").output)
    assert list(giant) == ["giant"] and set(giant["giant"]) == set(ALGORITHMS["giant"].params)
    algorithm = parse_text(invoke("algorithm").output)
    assert list(algorithm) == ["algorithm", *sorted(ALGORITHMS)]
    everything = parse_text(invoke().output)
    assert list(everything)[:3] == ["data", "model", "algorithm"]
    assert list(everything)[-2:] == ["run", "output"]


def test_unknown_section_is_one_line_and_exit_code_2():
    res = invoke("gaint")
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith("distnewton: error: config: unknown section 'gaint'")
    assert "did you mean 'giant'" in lines[0] and "data, model" in lines[0]


def test_the_installed_command_runs():
    res = cli("config", "output")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("output: ") and "  overwrite: bool, default false" in res.stdout
    bad = cli("config", "nosuch")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and not bad.stdout


def test_markdown_has_every_key_with_its_default():
    md = confdoc.render_markdown()
    rows = {}
    section = None
    for line in md.splitlines():
        if line.startswith("#"):
            section = line.lstrip("#").strip()
            rows[section] = {}
        elif line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows[section][cells[0].strip("`")] = cells[2].strip("`")
    for block, params in expected().items():
        assert set(rows[block]) == set(params), block
        for key, p in params.items():
            assert same_default(rows[block][key], p.default), (block, key)
    assert confdoc.md_escape("||g|| <= f* `a|b` x_1") == r"\|\|g\|\| &lt;= f\* `a\|b` x\_1"


def load_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    return hooks


def test_the_docs_page_is_generated_from_the_same_function():
    """docs/configuration.md commits no copy: the build fills in the reference."""
    hooks = load_hooks()
    page = (ROOT / "docs" / "guide" / "configuration.md").read_text()
    assert "<!-- distnewton:config -->" in page and "| `grad_rtol` |" not in page
    built = hooks.expand(page)
    assert "distnewton:config" not in built
    assert confdoc.render_markdown(None, confdoc.builtin_algorithms()) in built
    for section, params in SCHEMA.items():
        for key in params:
            assert f"| `{key}` |" in built, (section, key)


@pytest.mark.parametrize("name", sorted(confdoc.builtin_algorithms()))
def test_each_algorithm_page_lists_its_keys(name):
    hooks = load_hooks()
    pages = list((ROOT / "docs" / "algorithms").glob("*.md"))
    hits = [p for p in pages if f"<!-- distnewton:config {name} noheadings -->" in p.read_text()]
    assert len(hits) == 1, (name, hits)
    built = hooks.expand(hits[0].read_text())
    for key in ALGORITHMS[name].params:
        assert f"| `{key}` |" in built, (name, key)


def test_the_plugin_example_page_reads_its_keys_from_the_package():
    built = load_hooks().expand((ROOT / "docs" / "algorithms" / "dane.md").read_text())
    for key in ("eta", "mu", "local_steps", "local_solver", "cg_rtol", "cg_maxiter"):
        assert f"| `{key}` |" in built, key

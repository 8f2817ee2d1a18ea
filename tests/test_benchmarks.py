"""Every script under benchmarks/ runs: ``python benchmarks/X.py --smoke``.

The scripts are found by glob (``benchmarks/*.py`` but the ``_*.py`` helpers),
so a new script cannot be forgotten: it needs a ``--smoke`` mode (tiny synthetic
data or very few rounds, seconds, the whole code path) that prints its tables.
Smoke mode needs no ``../shared/data`` and no LIBLINEAR (its rows are left out,
saying so), and must not touch the committed ``benchmarks/results/*.md``.
A script that launches ``mpiexec`` carries the ``mpi`` marker (the Open MPI pass).
"""

import hashlib
import re
import subprocess
import sys

import pytest

from support.launch import ROOT, env

#: whole runs (processes, MPI or files): outside the `-m "not slow"` inner loop
pytestmark = pytest.mark.slow

BENCH = ROOT / "benchmarks"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))
#: A Markdown table: a header row, then the separator row (| --- | :-: |).
SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")


def cases():
    for script in SCRIPTS:
        text = script.read_text()
        marks = [pytest.mark.slow]
        if "mpiexec" in text:
            marks.append(pytest.mark.mpi)
        yield pytest.param(script, id=script.stem, marks=marks)


def committed_results():
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(BENCH.glob("results/*.md"))}


def table_headers(stdout):
    """The header rows of the Markdown tables in ``stdout``."""
    lines = stdout.splitlines()
    return [lines[i - 1] for i in range(1, len(lines))
            if SEPARATOR.match(lines[i].strip()) and lines[i - 1].strip().startswith("|")]


def test_every_script_is_found():
    assert len(SCRIPTS) >= 9 and all(p.suffix == ".py" for p in SCRIPTS)


def test_results_files_are_in_benchmarks_results():
    """The committed tables live in benchmarks/results/ (the docs render them from
    there), each named after the script that writes it."""
    names = committed_results()
    assert len(names) >= 10 and not list(BENCH.glob("results-*.md"))
    stems = {p.stem for p in SCRIPTS}
    assert {name[:-3] for name in names} <= stems, set(names) - {f"{s}.md" for s in stems}


@pytest.mark.parametrize("script", list(cases()))
def test_benchmark_smoke_mode_runs_and_prints_its_table(script, tmp_path):
    if "sklearn" in script.read_text():
        pytest.importorskip("sklearn", reason="the benchmark needs scikit-learn (bench extra)")
    before = committed_results()
    res = subprocess.run([sys.executable, str(script), "--smoke"], cwd=tmp_path, env=env(),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{script.name} --smoke failed:\n{res.stderr[-4000:]}"
    headers = table_headers(res.stdout)
    assert headers, f"{script.name} --smoke printed no table:\n{res.stdout[-3000:]}"
    assert committed_results() == before, "smoke mode changed benchmarks/results/*.md"
    assert not list(tmp_path.iterdir()), f"left files behind: {list(tmp_path.iterdir())}"


def test_defaults_check_smoke_covers_every_algorithm(tmp_path):
    """benchmarks/defaults_check.py (issue 30, item 2) has a row for every registered
    algorithm, and its f* is scikit-learn's (the independent reference): newton, giant
    and lbfgs at their defaults reach 1e-6 against it on the smoke set."""
    pytest.importorskip("sklearn", reason="f* from scikit-learn (bench extra)")
    from distnewton.algorithms import ALGORITHMS
    res = subprocess.run([sys.executable, str(BENCH / "defaults_check.py"), "--smoke"],
                         cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    assert re.search(r"f\* = \S+ \(scikit-learn \d\S*, newton \d", res.stdout), res.stdout[:2000]
    summary = res.stdout.split("Rounds to relative suboptimality 1e-6 at the defaults")[1]
    rows = {cells[0]: cells[1:] for cells in
            ([c.strip() for c in line.strip().strip("|").split("|")]
             for line in summary.splitlines() if line.startswith("| ") and "---" not in line)}
    assert set(rows) - {"algorithm"} == set(ALGORITHMS)
    for name in ("newton", "giant", "lbfgs"):
        assert rows[name][0] == "second-order" and rows[name][1].isdigit(), rows[name]

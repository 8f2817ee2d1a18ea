"""The fast suite (the README's test command) and the rest (CI's second pass) split the
tests without loss, and the fast suite runs one real job per feature: every test id of
support/suites.py's SMOKE table is collected, sits in the fast suite, and the table in
docs/tests.md lists the same features and tests."""

import re
import subprocess
import sys

from support.launch import ROOT
from support.suites import SMOKE

COUNT = re.compile(r"^(\d+)/(\d+) tests collected", re.M)


def collect(*args):
    """The node ids ``pytest --collect-only`` selects, and the number collected."""
    res = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    ids = {line for line in res.stdout.splitlines() if "::" in line}
    match = COUNT.search(res.stdout)
    assert match, res.stdout[-500:]
    assert int(match.group(1)) == len(ids)
    return ids, int(match.group(2))


def test_fast_and_rest_split_every_test_once_and_fast_holds_the_smoke_tests():
    fast, total = collect("--suite", "fast")
    rest, total_again = collect("--suite", "rest")
    assert total == total_again
    assert not fast & rest
    assert len(fast) + len(rest) == total
    missing = set(SMOKE.values()) - fast
    assert not missing, f"SMOKE ids not in the fast suite (renamed?): {sorted(missing)}"
    assert not {i for i in rest if "test_suites.py" in i}      # this check runs in fast


def test_the_docs_table_lists_the_smoke_tests():
    text = (ROOT / "docs/tests.md").read_text()
    rows = re.findall(r"^\| (.+?) \| `(tests/[^`]+)` \|$", text, re.M)
    assert rows, "docs/tests.md has no table of the fast suite's real jobs"
    assert dict(rows) == SMOKE

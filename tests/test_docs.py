"""The front page and the documentation sources: the README keeps the two commands
(.ci/run runs the second) and stays short, its links and the site's navigation point
at pages that exist.  (``mkdocs build --strict`` in .ci/run checks the links inside
the site.)"""

import re

import yaml

from support.launch import ROOT

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_is_a_front_page_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    lines = text.splitlines()
    assert len(lines) < 200
    assert "pip install -e . && mpiexec -n 5 distnewton run configs/quickstart.yaml" in lines
    assert "pip install -e '.[test]' && python -m pytest -q" in lines
    assert "mkdocs serve" in text and "CHANGELOG.md" in text


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text()
    targets = [t for t in LINK.findall(text) if "://" not in t]
    assert len(targets) >= 15
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, missing


def nav_pages(nav):
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            yield from nav_pages(value)
        else:
            yield value


def test_every_written_page_is_in_the_navigation_and_exists():
    """Generated pages (benchmarks/results/*, changelog.md) come from docs/hooks.py."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = set(nav_pages(config["nav"]))
    written = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    generated = {f"benchmarks/results/{p.name}"
                 for p in (ROOT / "benchmarks" / "results").glob("*.md")} | {"changelog.md"}
    assert written | generated == pages, (pages - written - generated,
                                          (written | generated) - pages)

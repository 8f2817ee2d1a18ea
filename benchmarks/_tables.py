"""Markdown tables for the benchmark scripts (imported from the script's folder)."""

import sys


def markdown_table(header, rows, title=None):
    """Print ``rows`` under ``header`` as an aligned Markdown table."""
    if title:
        print(f"\n{title}\n")
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print()
    sys.stdout.flush()

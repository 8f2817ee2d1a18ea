"""The claims tables' one rule: how a measured number becomes a verdict.

Every paper script (``paper_*.py``) states each claim of its paper as a
:class:`Claim` and measures it at the targets of :data:`TARGETS` (relative
suboptimality (f - f*) / |f*|), plus the paper's own absolute loss target where
the paper has one. A row is one *variant*:

- ``paper``: the method as the paper writes it (``algorithm.preset: paper`` or
  the keys the script states);
- ``default``: distnewton's default, labelled "ours";
- any other label: a variant that is not the paper's, labelled as such.

The rule (:func:`verdict`), stated once and quoted by ``docs/benchmarks/reproduced.md``:

- **yes**: the claim holds for the paper's variant at *every* target the paper's
  figure covers (``Claim.targets``), on every data set of the paper's setting
  that was measured, and every target was measured;
- **partly**: it holds for the paper's variant at some but not all of them;
- **no**: it holds at none of them;
- **not measured**: the paper's variant was not measured at some target and it
  holds at none of those that were.

Rows of other variants are shown beside the paper's with "(not the paper's)"
and never change the verdict. A stochastic claim is measured over at least
:data:`MIN_SEEDS` seeds and "holds" only when the comparison holds for the
median *and* for at least 3/4 of the seeds (:func:`holds_over_seeds`); the table
shows the median and the spread (min-max).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TARGETS = (1e-3, 1e-4, 1e-6)
MIN_SEEDS = 10
PAPER = "paper"
DEFAULT = "default"


@dataclass
class Claim:
    """One sentence of a paper, where it is and what measures it."""
    paper: str                      # "LocalNewton (Gupta et al. 2021)"
    where: str                      # "Sec. 5, Fig. 2"
    text: str                       # the claim as the paper states it
    setting: str                    # data sets, K, lambda, ... as the paper's
    targets: tuple = TARGETS        # the targets the paper's figure covers
    absolute: dict = field(default_factory=dict)   # data set -> the paper's loss target


def verdict(holds: dict) -> str:
    """The verdict from ``{target: True | False | None}`` for the paper's
    variant (None: not measured), over the targets the claim covers."""
    values = list(holds.values())
    if not values:
        return "not measured"
    measured = [v for v in values if v is not None]
    if measured and all(measured) and len(measured) == len(values):
        return "yes"
    if any(measured):
        return "partly"
    if len(measured) < len(values):
        return "not measured"
    return "no"


def holds_over_seeds(per_seed) -> bool | None:
    """A stochastic comparison holds when it holds for the median and for at
    least 3/4 of the seeds. ``per_seed``: one signed margin per seed (> 0 means
    the claim holds for that seed; NaN: not reached)."""
    m = np.asarray(per_seed, dtype=float)
    if m.size < MIN_SEEDS:
        return None
    finite = m[np.isfinite(m)]
    if finite.size == 0:
        return None
    return bool(np.median(finite) > 0 and np.mean(m > 0) >= 0.75)


def spread(values, fmt="{:.3g}") -> str:
    """'median (min-max)' over seeds, NaN-aware ('not reached' when none is)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "not reached"
    return f"{fmt.format(np.median(v))} ({fmt.format(v.min())}-{fmt.format(v.max())})"


def label(variant: str) -> str:
    """How a row's variant is shown: the paper's, ours, or not the paper's."""
    if variant == PAPER:
        return "as the paper writes it"
    if variant == DEFAULT:
        return "distnewton's default (ours)"
    return f"{variant} (not the paper's)"

"""RANL's model regions, worker capacities and per-round masks (pure numpy).

Regions (``algorithm.regions``, ``n_regions``, ``region_seed``):

* ``regions: Q`` (an integer): the d coordinates in order, cut into Q contiguous
  blocks whose sizes differ by at most one (coordinate j is in region
  floor(j Q / d));
* ``regions: random``: ``n_regions`` blocks (default 10) of the same sizes,
  but of randomly assigned coordinates: a permutation drawn from
  ``default_rng(region_seed)`` is cut as above.

The layout depends only on (d, regions, n_regions, region_seed), so the
master and every worker compute it alone: no communication.

Capacities (``algorithm.capacities``) are fractions of the Q regions a worker
trains per round: one number in (0, 1] for every worker, a list of K numbers,
or ``uniform(a, b)`` with 0 < a <= b <= 1, drawn once per run from the run
seed (stream ``(seed, 0, 2)``).  Worker i trains s_i = floor(c_i Q) regions
per round (at least 1).

Masks: each round every worker i draws s_i distinct regions uniformly at
random (the master's stream ``(seed, 0, 1)``); then, while some region is
trained by fewer than ``tau`` workers, the master moves one slot from a most
covered region r to it (a random worker that trains r but not q).  The sizes
s_i never change.  This repair always succeeds when sum_i s_i >= tau Q and
tau <= K (a most covered region then has more than tau workers, so more than
the under-covered one, so one of them does not train it), and those are
exactly the conditions checked up front: otherwise ``algorithm.tau`` is a
user error naming the numbers.
"""

from __future__ import annotations

import numbers
import re

import numpy as np

from ...errors import UserError

DEFAULT_RANDOM_REGIONS = 10
MASK_STREAM, CAPACITY_STREAM = 1, 2
_UNIFORM = re.compile(r"^\s*uniform\s*\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)\s*$")


def _is_number(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and np.isfinite(x)


def check_regions(value):
    """Config-time check of ``regions``: an integer >= 1 or 'random'."""
    if isinstance(value, str):
        return None if value.strip() == "random" else \
            f"must be an integer >= 1 or 'random', got {value!r}"
    return None if value >= 1 else f"must be an integer >= 1 or 'random', got {value}"


def check_capacities(value):
    """Config-time check of ``capacities``: a number, a list or 'uniform(a, b)'."""
    if isinstance(value, str):
        try:
            uniform(value, "numbers")
        except UserError as exc:
            return str(exc)
        return None
    vals = value if isinstance(value, list) else [value]
    if not vals:
        return "must not be an empty list"
    for v in vals:
        if not _is_number(v) or not 0 < v <= 1:
            return f"must be numbers in (0, 1], got {v!r}"
    return None


def region_layout(d, regions, n_regions=None, region_seed=0):
    """region_of: int64 array of length d, the region of every coordinate."""
    if isinstance(regions, str):
        if regions.strip() != "random":
            raise UserError(f"algorithm.regions: must be an integer >= 1 or 'random', "
                            f"got {regions!r}")
        Q = DEFAULT_RANDOM_REGIONS if n_regions is None else int(n_regions)
        key = "algorithm.n_regions"
        if Q > d:
            raise UserError(f"{key}: {Q} regions but only {d} coordinates (need <= d)")
        order = np.random.default_rng(int(region_seed)).permutation(d)
    else:
        if n_regions is not None and n_regions != regions:
            raise UserError(f"algorithm.n_regions: only used with regions: random "
                            f"(regions: {regions} already sets the count)")
        Q = int(regions)
        if Q > d:
            raise UserError(f"algorithm.regions: {Q} regions but only {d} coordinates "
                            "(need <= d)")
        order = np.arange(d)
    region_of = np.empty(d, dtype=np.int64)
    region_of[order] = np.arange(d, dtype=np.int64) * Q // d
    return region_of


def uniform(spec, many):
    """(a, b) of ``'uniform(a, b)'`` with 0 < a <= b <= 1, else UserError (no key)."""
    m = _UNIFORM.match(spec)
    try:
        a, b = (float(m.group(1)), float(m.group(2))) if m else (None, None)
    except ValueError:
        a = b = None
    if a is None:
        raise UserError(f"expected a number, a list of {many} or 'uniform(a, b)', got {spec!r}")
    if not 0 < a <= b <= 1:
        raise UserError(f"uniform(a, b) needs 0 < a <= b <= 1, got {spec!r}")
    return a, b


def parse_capacities(spec, K, seed):
    """The K capacities c_i in (0, 1] (see the module docstring)."""
    key = "algorithm.capacities"
    if isinstance(spec, str):
        try:
            a, b = uniform(spec, f"{K} numbers")
        except UserError as exc:
            raise UserError(f"{key}: {exc}") from None
        rng = np.random.default_rng(np.random.SeedSequence((int(seed), 0, CAPACITY_STREAM)))
        return rng.uniform(a, b, size=K)
    if isinstance(spec, list):
        if len(spec) != K:
            raise UserError(f"{key}: a list needs one value per worker ({K} workers), "
                            f"got {len(spec)}")
        caps = np.array(spec, dtype=np.float64)
    else:
        caps = np.full(K, float(spec))
    msg = check_capacities(list(caps))
    if msg:
        raise UserError(f"{key}: {msg}")
    return caps


def region_counts(capacities, Q):
    """s_i = floor(c_i Q) regions per round, at least 1 (1e-9 absorbs 0.3 * 10 = 2.99..)."""
    return np.clip(np.floor(np.asarray(capacities) * Q + 1e-9), 1, Q).astype(np.int64)


def check_tau(tau, counts, Q):
    """UserError unless masks of sizes ``counts`` can cover every region tau times."""
    K, slots = len(counts), int(np.sum(counts))
    if tau > K:
        raise UserError(f"algorithm.tau: {tau} workers per region impossible with only "
                        f"{K} workers (need tau <= {K})")
    if slots < tau * Q:
        raise UserError(f"algorithm.tau: covering {Q} regions {tau} times needs {tau * Q} "
                        f"region slots per round, the capacities give only {slots} "
                        f"(regions per worker {counts.tolist()}); lower tau, raise "
                        "capacities or use fewer regions")


def draw_masks(rng, counts, Q, tau):
    """K x Q boolean masks: row i has counts[i] regions, every column >= tau."""
    K = len(counts)
    M = np.zeros((K, Q), dtype=bool)
    for i, s in enumerate(counts):
        M[i, rng.choice(Q, size=int(s), replace=False)] = True
    cover = M.sum(axis=0)
    while cover.min() < tau:
        low = np.flatnonzero(cover == cover.min())
        q = int(low[rng.integers(low.size)])
        high = np.flatnonzero(cover == cover.max())
        r = int(high[rng.integers(high.size)])
        movers = np.flatnonzero(M[:, r] & ~M[:, q])      # non-empty (see module doc)
        i = int(movers[rng.integers(movers.size)])
        M[i, r], M[i, q] = False, True
        cover[r] -= 1
        cover[q] += 1
    return M

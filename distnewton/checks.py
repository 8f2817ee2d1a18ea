"""Range checks a run's inputs pass before anything is allocated (issue 28).

:func:`distnewton.config.resolve` calls :func:`cross` (the keys whose range
depends on another key or on their contents: list items, ``f_star`` with
``target_subopt``) and :func:`memory` (``data.n_features``: the vectors and
d x d matrices the chosen algorithm allocates must fit in this machine's
RAM).  Once the data is read, :func:`vectors` checks the same for the ``d``
of the file and :func:`magnitude` refuses values whose squares overflow.

The limits, each explained once:

- memory: a rank holds at least :data:`VECTORS` float64 vectors of length d
  (the iterate, the gradient, a direction, a reduce buffer); an algorithm
  whose ``dense_path`` says it forms d x d matrices needs
  :data:`~distnewton.linalg.DENSE_COPIES` of them more
  (:func:`~distnewton.linalg.check_dense_hessian`).  Both are compared with
  the physical RAM (``os.sysconf``), so a refusal is certain, never a guess
  about what else runs;
- magnitude: the Hessian's entries sum ``x_ij x_ik`` over the n rows (ridge's
  loss sums ``y_i^2``), so a feature value or a ridge label above
  ``sqrt(DBL_MAX / n)`` overflows float64 at the first iterate; it is refused
  naming the file (no raw numpy RuntimeWarning, no "diverged").
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

from .errors import UserError
from .params import INT64_MAX

#: float64 vectors of length d every rank holds at least
VECTORS = 4


def ram_bytes() -> int | None:
    """This machine's physical memory (None when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def vectors(d: int, key: str):
    """UserError naming ``key`` when :data:`VECTORS` vectors of length d exceed the RAM."""
    ram, need = ram_bytes(), VECTORS * 8.0 * d
    if ram is not None and need > ram:
        raise UserError(f"{key}: d = {d} features need at least {need / 2**30:.1f} GiB "
                        f"per rank ({VECTORS} float64 vectors of length d), more than this "
                        f"machine's {ram / 2**30:.1f} GiB")


def l1_term(cfg, cls):
    """An L1 term (``model.l1`` > 0, ``model.l1_ratio`` > 0) needs a method for
    non-smooth objectives (a class with ``takes_l1``: owlqn); the others minimise a
    smooth objective and would report the wrong minimiser."""
    mc = cfg["model"]
    key = ("model.l1_ratio" if mc.get("l1_ratio") is not None else "model.l1")
    if mc.get("l1_ratio") is not None and mc.get("l1"):
        raise UserError("model.l1: give model.l1 (the L1 weight) or model.l1_ratio (the "
                        "L1 share of model.lambda), not both")
    if (mc.get("l1_ratio") or mc.get("l1")) and not getattr(cls, "takes_l1", False):
        raise UserError(f"{key}: algorithm {cls.name} minimises smooth objectives only; an "
                        "L1 term needs algorithm.name: owlqn")


def memory(cfg, cls):
    """``data.n_features`` given: its vectors and the algorithm's d x d matrices fit."""
    n_features = cfg["data"]["n_features"]
    if n_features is None:
        return
    d = n_features + (1 if cfg["model"]["fit_intercept"] else 0)
    vectors(d, "data.n_features")
    dense = getattr(cls, "dense_path", None)
    path = dense({k: v for k, v in cfg["algorithm"].items() if k != "name"}, d) if dense else None
    if path is not None:
        from .linalg import check_dense_hessian
        key, hint = path
        check_dense_hessian(d, key, f"{hint} (d from data.n_features)")


def _number(value) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def _numeric_text(v) -> bool:
    """A label written as text ("1"), as the label mapping has always read it."""
    try:
        return isinstance(v, str) and math.isfinite(float(v))
    except ValueError:
        return False


def _count(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and 0 <= v <= INT64_MAX


def synth(spec):
    """``data.synth``: a seed numpy takes, and a matrix that fits in the RAM (16
    bytes per non-zero: value and index; the other arguments are checked by
    :func:`~distnewton.data.make_synthetic`)."""
    if spec is None:
        return
    seed = spec.get("seed", 0)
    if not _count(seed):
        raise UserError(f"data.synth.seed: must be an integer in [0, 2**63 - 1], got {seed!r}")
    n, d, density = spec.get("n_samples"), spec.get("n_features"), spec.get("density", 0.1)
    ram = ram_bytes()
    if _count(n) and _count(d) and _number(density) and 0 < density <= 1 and ram:
        need = 16.0 * n * d * density + 8.0 * (n + d)
        if need > ram:
            raise UserError(f"data.synth: n_samples x n_features x density = "
                            f"{n * d * density:.3g} non-zeros need {need / 2**30:.1f} GiB, "
                            f"more than this machine's {ram / 2**30:.1f} GiB")


def cross(cfg, suggest=lambda key, valid: ""):
    """Checks of keys by their contents or by another key (after the types);
    ``suggest(key, valid)``: the closest valid key, for a misspelt one."""
    labels = cfg["data"]["positive_labels"]
    if labels is not None:
        bad = [v for v in labels if not (_number(v) or _numeric_text(v))]
        if bad or not labels:
            raise UserError("data.positive_labels: expected a non-empty list of finite "
                            f"numbers (the labels mapped to +1), got {labels!r}")
    synth(cfg["data"]["synth"])
    run = cfg["run"]
    if run["target_subopt"] is not None and run["f_star"] == 0:
        raise UserError("run.f_star: 0 with run.target_subopt: the relative suboptimality "
                        "(f - f*)/|f*| divides by |f*|; use run.target_loss instead")
    latency(run["latency_model"], suggest)
    cw = cfg["model"]["class_weight"]
    if isinstance(cw, dict):
        for label, weight in cw.items():
            if isinstance(weight, float) and not math.isfinite(weight):
                raise UserError(f"model.class_weight.{label}: must be finite, got {weight}")
            if not _number(weight) or weight < 0:
                raise UserError(f"model.class_weight.{label}: must be a number >= 0, "
                                f"got {weight!r}")


def latency(lm, suggest):
    """``run.latency_model``: per_round and per_byte, finite numbers >= 0 (default 0;
    YAML 1.1's 1e-9 string read as a number); ``lm`` is completed in place."""
    if lm is None:
        return
    keys = ("per_round", "per_byte")
    for key in lm:
        if key not in keys:
            raise UserError(f"run.latency_model.{key}: unknown key{suggest(key, keys)}")
    for key in keys:
        value = lm.setdefault(key, 0.0)
        if isinstance(value, str):
            try:
                value = lm[key] = float(value)
            except ValueError:
                pass
        if not _number(value) or value < 0:
            raise UserError(f"run.latency_model.{key}: must be a finite number >= 0, "
                            f"got {value!r}")


def largest(X, y) -> tuple:
    """(max |x_ij|, max |y_i|) of one piece of the rows (0 when empty); no copy of
    the values (``np.abs`` would allocate one as large as the shard)."""
    def top(a):
        return float(max(a.max(), -a.min())) if a.size else 0.0
    return top(X.data if hasattr(X, "data") else np.asarray(X)), top(np.asarray(y))


def magnitude(big, n, loss, source):
    """UserError naming ``source`` when ``big`` (:func:`largest`, over all rows) holds
    a feature value (or a ridge label) whose square summed over n rows overflows."""
    limit = math.sqrt(np.finfo(np.float64).max / max(1, n))
    what = [("a feature value", "features", big[0])]
    if loss == "ridge":
        what.append(("a label", "labels", big[1]))
    for name, plural, value in what:
        if value > limit:
            raise UserError(f"{source}: {name} of magnitude {value:.3g} overflows float64 "
                            f"(its square summed over {n} rows; at most {limit:.3g}): "
                            f"rescale the {plural}")

"""Per-row weights: ``data.weights`` (a file, one number per row) and
``model.class_weight`` (``balanced`` or ``{label: weight}``).

With row weights s_j the objective is

    f(w) = (1/n) sum_j s_j l(x_j.w, y_j) + penalty(w)

(the mean is still over the n rows, so weights of 1 are the unweighted problem),
which is scikit-learn's ``C sum_j s_j l_j + ||w||^2/2`` up to the factor
1/(lambda n) with C = 1/(lambda n), i.e. its ``sample_weight``.  ``class_weight``
multiplies each row's weight by its class's weight, as scikit-learn does;
``balanced`` gives class c the weight sum_j s_j / (2 sum_{j in c} s_j)
(scikit-learn's ``compute_class_weight`` with ``sample_weight``; with no
``data.weights`` that is n / (2 n_c)).  The classes are the mapped ones (-1, +1),
so with ``data.positive_labels`` a class is the group of its raw labels; a
``{label: weight}`` mapping names raw training labels, and rows of labels it
does not name keep weight 1.  The weights are sharded with the rows
(:class:`~distnewton.objectives.Shard` ``s``).
"""

from __future__ import annotations

import lzma
import os
import zlib

import numpy as np

from .errors import UserError
from .objectives import is_classification


def read_weights(path, n, key="data.weights") -> np.ndarray:
    """One finite number >= 0 per non-blank line (``#`` comments allowed; plain,
    .gz, .bz2 or .xz), exactly n of them; errors name the file and line."""
    from .data.libsvm import _open
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{key}: {path}: no such file")
    values = []
    try:
        with _open(path, "rb") as fh:
            for ln, raw in enumerate(fh, start=1):
                text = raw.split(b"#", 1)[0].strip()
                if not text:
                    continue
                try:
                    v = float(text.decode("ascii"))
                except (UnicodeDecodeError, ValueError):
                    raise UserError(f"{path}:{ln}: weight {text[:40].decode('ascii', 'replace')!r}"
                                    " is not a number") from None
                if not np.isfinite(v) or v < 0:
                    raise UserError(f"{path}:{ln}: weight {v!r} must be finite and >= 0")
                values.append(v)
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise UserError(f"{key}: {path}: cannot read ({exc})") from None
    if len(values) != n:
        raise UserError(f"{key}: {path} has {len(values)} weights but the training set has "
                        f"{n} rows (one weight per row)")
    return np.array(values, dtype=np.float64)


def class_weights(spec, raw_y, y, sample, label_map, key="model.class_weight",
                  total=None):
    """Per-row factors of ``model.class_weight`` (None: none).  ``total``: sums a
    vector over every rank's rows (parallel ingestion; default: these rows are all)."""
    if spec is None:
        return None
    if spec == "balanced" and label_map.get("rule") == "multinomial":
        return balanced_classes(y, sample, len(label_map["classes"]), total)
    if spec == "balanced":
        out = np.ones(len(y))
        sums = np.array([sample.sum(), sample[y == -1.0].sum(), sample[y == 1.0].sum()])
        whole, *masses = total(sums) if total is not None else sums
        for c, mass in zip((-1.0, 1.0), masses):
            if mass > 0:
                out[y == c] = whole / (2.0 * mass)
        return out
    if not isinstance(spec, dict):
        raise UserError(f"{key}: must be 'balanced' or a mapping {{label: weight}}, "
                        f"got {spec!r}")
    known = sorted(float(k) for k in label_map["map"])
    out = np.ones(len(y))
    for label, weight in spec.items():
        try:
            lab = float(label)
        except (TypeError, ValueError):
            raise UserError(f"{key}: label {label!r} is not a number") from None
        if lab not in known:
            shown = [int(k) if k.is_integer() else k for k in known]
            raise UserError(f"{key}: label {label!r} does not occur in the training labels "
                            f"{shown}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) \
                or not np.isfinite(weight) or weight < 0:
            raise UserError(f"{key}.{label}: must be a number >= 0, got {weight!r}")
        out[raw_y == lab] = float(weight)
    return out


def balanced_classes(y, sample, C, total=None):
    """'balanced' over C classes (y: class indices): class c's rows weigh
    sum(s) / (C sum_{class c} s), scikit-learn's n / (C bincount) with sample weights."""
    sums = np.array([sample.sum()] + [sample[y == c].sum() for c in range(C)])
    whole, *masses = total(sums) if total is not None else sums
    out = np.ones(len(y))
    for c, mass in enumerate(masses):
        if mass > 0:
            out[y == c] = whole / (C * mass)
    return out


def row_weights(cfg, raw_y, y, label_map, sample=None, total=None):
    """The rows' weights s_j (data.weights, or ``sample`` given in memory, times
    class weights), or None when neither is set (the unweighted problem,
    computed exactly as before).  ``total``: as in :func:`class_weights`, for a
    rank that holds part of the rows."""
    dc, mc = cfg["data"], cfg["model"]
    if dc["weights"] is None and mc["class_weight"] is None and sample is None:
        return None
    if mc["class_weight"] is not None and not is_classification(mc["loss"]):
        raise UserError("model.class_weight: only for loss logistic or squared_hinge "
                        f"({mc['loss']} has no classes; use data.weights)")
    if sample is None:
        sample = (np.ones(len(y)) if dc["weights"] is None
                  else read_weights(dc["weights"], len(y)))
    factor = class_weights(mc["class_weight"], raw_y, y, sample, label_map, total=total)
    s = sample if factor is None else sample * factor
    some = float(s.any()) if total is None else total([float(s.any())])[0]
    if not some:
        raise UserError("data.weights: every row has weight 0")
    return s


def weights_key(cfg) -> str:
    """What the weights add to the f* cache key ("" when unweighted)."""
    dc, mc = cfg.get("data") or {}, cfg.get("model") or {}
    parts = []
    if dc.get("weights"):
        from .data.registry import file_sha256
        try:
            parts.append(f"weights={file_sha256(dc['weights'])}")
        except OSError:
            parts.append(f"weights={dc['weights']}")
    if mc.get("class_weight") is not None:
        parts.append(f"class_weight={mc['class_weight']!r}")
    return "".join(f"|{p}" for p in parts)

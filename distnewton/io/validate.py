"""Checks of what a result file holds, made when it is read (issue 28).

One function per kind of file or use, each returning the validated parts or
raising a :class:`~distnewton.errors.UserError` ``FILE: FIELD: what`` (e.g.
``out.h5: /model/w: 3 of 5 weights are not finite``):

- :func:`check_parts`: every reader of a result (HDF5 or fallback archive),
  so ``report``, ``plot``, ``recover`` and :func:`distnewton.io.load`: the
  root attributes of the types :data:`~distnewton.io.schema.ATTRIBUTE_KINDS`
  says, the ``config`` attribute a YAML mapping, the history's columns 1-D, of
  one length, the standard ones numeric, and ``/model/w`` (when present) a
  float array of 1 or 2 dimensions;
- :func:`model_fields`: what ``predict``, ``evaluate``, ``export`` (and
  :func:`distnewton.model.load_model`) need besides: the loss a known one, the
  weights finite and as many as ``n_features`` (one row per class for
  one-vs-rest), the label map well formed, ``fit_intercept`` known (from
  ``/model/w``'s ``intercept_index`` or the config) and lambda finite;
- :func:`check_fallback_arrays`: a fallback archive's arrays, of the kinds it
  is written with (:mod:`distnewton.io.fallback`);
- :func:`check_weights`: a warm start (``model.w0``: a result's model or a
  ``.npy`` vector);
- :func:`check_f_star`: an f* used for a relative suboptimality (finite, nonzero).
"""

from __future__ import annotations

import ast
import json
import math

import numpy as np

from ..errors import UserError
from .schema import ATTRIBUTE_KINDS, BASE_COLUMNS, TIMING_COLUMNS

#: The losses a model can have (the root attribute ``loss``).
LOSSES = ("logistic", "ridge", "squared_hinge", "poisson")
#: the losses whose label map is the identity (regression targets)
IDENTITY_LOSSES = ("ridge", "poisson")
KIND_WORDS = {"int": "an integer", "number": "a number", "text": "text",
              "bool": "true or false"}


def bad(path, field, what):
    """The UserError ``PATH: FIELD: what`` (one line)."""
    return UserError(" ".join(f"{path}: {field}: {what}".split()))


def _shape(value) -> str:
    return f"an array of shape {tuple(np.shape(value))}"


def attribute(path, attrs, name, kind):
    """Root attribute ``name`` checked against ``kind`` (int, number, text, bool);
    None when absent."""
    value = attrs.get(name)
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.ndim:
            raise bad(path, f"attribute {name}", f"expected a single value, got {_shape(value)}")
        value = value[()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    ok = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "text": lambda v: isinstance(v, str),
          "bool": lambda v: isinstance(v, (bool, int))}[kind](value)
    if not ok:
        raise bad(path, f"attribute {name}", f"expected {KIND_WORDS[kind]}, got "
                  f"{type(value).__name__} {str(value)[:40]!r}")
    return value


def config_of(path, attrs) -> dict:
    """The ``config`` attribute as a dict ({} when absent)."""
    from ..yamlio import load_text
    text = attribute(path, attrs, "config", "text")
    if text is None or not text.strip():
        return {}
    try:                                       # libyaml, with the size and alias limits
        cfg = load_text(text, "config")
    except UserError as exc:
        line = str(exc).split(":")[1] if str(exc).startswith("config:") else ""
        where = f" (line {line})" if line.isdigit() else ""
        raise bad(path, "attribute config", f"not valid YAML{where}") from None
    if not isinstance(cfg, dict):
        raise bad(path, "attribute config", f"expected a YAML mapping, got "
                  f"{type(cfg).__name__}")
    for section in ("data", "model", "run"):
        if cfg.get(section) is not None and not isinstance(cfg[section], dict):
            raise bad(path, "attribute config", f"{section}: expected a mapping, got "
                      f"{type(cfg[section]).__name__}")
    return cfg


def check_history(path, history):
    """Every column 1-D and of one non-zero length; the standard ones numeric."""
    lengths = {}
    for name, col in history.items():
        col = np.asarray(col)
        if col.ndim != 1:
            raise bad(path, f"history/{name}", f"expected a 1-D column, got {_shape(col)}")
        if (name in BASE_COLUMNS or name in TIMING_COLUMNS) and col.dtype.kind not in "fiub":
            raise bad(path, f"history/{name}", f"expected numbers, got {col.dtype}")
        lengths[name] = len(col)
    if len(set(lengths.values())) > 1:
        n = lengths.get("iteration", max(lengths.values()))
        odd = sorted(k for k, v in lengths.items() if v != n)
        raise bad(path, "history", f"columns of unequal length: {', '.join(odd[:5])} "
                  f"{'have' if len(odd) > 1 else 'has'} {lengths[odd[0]]} rows, iteration "
                  f"{n} (damaged file)")


def check_w(path, w, field="/model/w"):
    """``w`` a float array of 1 or 2 dimensions (None stays None)."""
    if w is None:
        return None
    w = np.asarray(w)
    if w.dtype.kind != "f":
        raise bad(path, field, f"expected floating-point weights, got {w.dtype}")
    if w.ndim not in (1, 2) or w.size == 0:
        raise bad(path, field, f"expected a vector (or classes x features), got {_shape(w)}")
    return w


def check_parts(path, attrs, history, w):
    """The checks every reader of a result makes (see the module docstring)."""
    for name, kind in ATTRIBUTE_KINDS.items():
        attribute(path, attrs, name, kind)
    config_of(path, attrs)
    check_history(path, history)
    return check_w(path, w)


# -- the model --------------------------------------------------------------
def label_map_of(path, attrs):
    text = attrs.get("label_map")
    name = "label_map"
    if text is None and attrs.get("label_map_json") is not None:
        text, name = attrs["label_map_json"], "label_map_json"
    if text is None:
        return None, name
    text = attribute(path, attrs, name, "text")
    try:
        value = json.loads(text) if name == "label_map_json" else ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise bad(path, f"attribute {name}", f"unreadable ({text[:60]!r})") from None
    if not isinstance(value, dict) or "loss" not in value:
        raise bad(path, f"attribute {name}", f"expected a dict with a 'loss' entry "
                  f"({text[:60]!r})")
    return value, name


def _numbers(values) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def check_label_map(path, lm, name, loss, w):
    """The label map as the model's readers use it (see :mod:`distnewton.model`)."""
    field = f"attribute {name}"
    if lm.get("loss") != loss:
        raise bad(path, field, f"is for loss {lm.get('loss')!r}, the model's is {loss!r}")
    if loss in IDENTITY_LOSSES:
        return lm
    table = lm.get("map")
    if not isinstance(table, dict) or not table or not _numbers(table) \
            or not _numbers(table.values()):
        raise bad(path, field, "'map' must map the training labels (numbers) to targets")
    if w.ndim == 2:
        classes = lm.get("classes")
        if not isinstance(classes, (list, tuple)) or not _numbers(classes) \
                or len(set(map(float, classes))) != len(classes):
            raise bad(path, field, "'classes' must list the distinct class labels")
        if len(classes) != w.shape[0]:
            raise bad(path, field, f"{len(classes)} classes, /model/w has {w.shape[0]} rows")
    else:
        if "rule" not in lm:
            raise bad(path, field, "no 'rule' entry")
        if not set(map(float, table.values())) == {-1.0, 1.0}:
            raise bad(path, field, "'map' must send the labels to both -1 and +1")
    return lm


def _flag(path, cfg, section, key, default):
    value = (cfg.get(section) or {}).get(key, default)
    if not isinstance(value, bool):
        raise bad(path, "attribute config", f"{section}.{key}: expected true or false, "
                  f"got {value!r}")
    return value


def _label_column(path, cfg):
    """data.label_column as trained (None when unset, or in a file from before it)."""
    value = (cfg.get("data") or {}).get("label_column")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, str))):
        raise bad(path, "attribute config", f"data.label_column: expected a column number "
                  f"or name, got {value!r}")
    return value


def fit_intercept_of(path, cfg, w, w_attrs):
    """model.fit_intercept: from /model/w's ``intercept_index`` (0.3 on) or the config."""
    index = w_attrs.get("intercept_index")
    if index is not None:
        index = attribute(path, w_attrs, "intercept_index", "int")
        if index not in (-1, w.shape[-1] - 1):
            raise bad(path, "/model/w attribute intercept_index", f"{index}: expected -1 or "
                      f"{w.shape[-1] - 1} (the last of {w.shape[-1]} weights)")
    model = cfg.get("model") or {}
    if "fit_intercept" in model:
        flag = _flag(path, cfg, "model", "fit_intercept", False)
        if index is not None and flag != (index >= 0):
            raise bad(path, "/model/w attribute intercept_index", f"{index} contradicts "
                      f"model.fit_intercept: {str(flag).lower()} in attribute config")
        return flag
    if index is None:
        raise bad(path, "model.fit_intercept", "unknown (no /model/w attribute "
                  "intercept_index, no model.fit_intercept in attribute config)")
    return index >= 0


def model_fields(path, attrs, w, w_attrs=None) -> dict:
    """The validated keyword arguments of :class:`distnewton.model.Model` (all but
    ``path``) from a result's parts (after :func:`check_parts`)."""
    if w is None:
        raise bad(path, "/model/w", "missing: the result file holds no model")
    w = check_w(path, w)
    cfg = config_of(path, attrs)
    model = cfg.get("model") or {}
    loss = attribute(path, attrs, "loss", "text")
    if loss is None:
        loss = model.get("loss")
        if loss is None:
            raise bad(path, "attribute loss", "missing (and no model.loss in attribute config)")
    if loss not in LOSSES:
        raise bad(path, "attribute loss", f"unknown loss {str(loss)[:40]!r} "
                  f"({', '.join(LOSSES)})")
    ovr = attribute(path, attrs, "multiclass", "text")
    if (w.ndim == 2) != (ovr in ("ovr", "multinomial")):
        raise bad(path, "/model/w", f"{_shape(w)} " + ("without" if w.ndim == 2 else "with")
                  + " the root attribute multiclass: ovr or multinomial")
    if ovr == "multinomial" and loss != "logistic":
        raise bad(path, "attribute multiclass", f"multinomial with loss {loss!r} (only logistic)")
    d = attribute(path, attrs, "n_features", "int")
    if d is not None and w.shape[-1] != d:
        raise bad(path, "/model/w", f"{w.shape[-1]} weights per model, attribute n_features "
                  f"is {d}")
    bad_count = int(np.count_nonzero(~np.isfinite(w)))
    if bad_count:
        raise bad(path, "/model/w", f"{bad_count} of {w.size} weights are not finite")
    lam = attribute(path, attrs, "lambda", "number")
    if lam is None or not math.isfinite(lam) or lam < 0:
        raise bad(path, "attribute lambda", f"expected a finite number >= 0, got {lam!r}")
    lm, name = label_map_of(path, attrs)
    if lm is None:
        if loss not in IDENTITY_LOSSES:
            raise bad(path, "attribute label_map", f"missing (a {loss} model needs it)")
        lm = {"loss": loss, "rule": "identity"}
    check_label_map(path, lm, name, loss, w)
    w_attrs = w_attrs or {}
    intercept = fit_intercept_of(path, cfg, w, w_attrs)
    if intercept and w.shape[-1] < 2 and d is None:
        raise bad(path, "/model/w", "an intercept and no feature")
    reg = w_attrs.get("regularized_intercept")
    reg = (bool(attribute(path, w_attrs, "regularized_intercept", "bool")) if reg is not None
           else _flag(path, cfg, "model", "regularize_intercept", True))
    return {"w": w.astype(np.float64), "loss": loss, "lam": float(lam),
            "fit_intercept": intercept, "label_map": lm, "regularize_intercept": reg,
            "zero_based": _flag(path, cfg, "data", "zero_based", False),
            "label_column": _label_column(path, cfg),
            "status": attribute(path, attrs, "status", "text") or "",
            "multinomial": ovr == "multinomial"}


# -- other files --------------------------------------------------------------
def check_fallback_arrays(path, z) -> dict:
    """A fallback archive's arrays: ``attrs`` (JSON of a dict) as a dict, the others
    of the kinds they are written with; UserError naming the array."""
    for name in ("distnewton_fallback", "attrs", "w"):
        if name not in z:
            raise bad(path, name, "missing (damaged fallback file)")
    for name in ("attrs", "column_docs", "requested_path", "error"):
        if name in z and (z[name].ndim or z[name].dtype.kind != "U"):
            raise bad(path, name, f"expected one string, got {z[name].dtype} "
                      f"{_shape(z[name])}")
    try:
        attrs = json.loads(str(z["attrs"]))
    except ValueError as exc:
        raise bad(path, "attrs", f"not valid JSON ({exc})") from None
    if not isinstance(attrs, dict):
        raise bad(path, "attrs", f"expected a JSON object, got {type(attrs).__name__}")
    if "column_docs" in z:
        try:
            docs = json.loads(str(z["column_docs"]))
        except ValueError:
            docs = None
        if not isinstance(docs, dict):
            raise bad(path, "column_docs", "expected a JSON object")
    return attrs


def check_weights(path, w, d, key="model.w0"):
    """A warm start: a 1-D vector of ``d`` finite numbers, as float64."""
    w = np.asarray(w)
    if w.dtype.kind not in "fiu" or w.ndim != 1:
        raise bad(key, path, f"expected a 1-D numeric vector, got shape {w.shape} of {w.dtype}")
    if len(w) != d:
        raise UserError(f"{key}: {path} has {len(w)} weights, the problem has {d} "
                        "(features, plus 1 with model.fit_intercept)")
    w = w.astype(np.float64)
    count = int(np.count_nonzero(~np.isfinite(w)))
    if count:
        raise bad(key, path, f"weights must be finite ({count} of {len(w)} are not)")
    return w


def check_f_star(value, source):
    """An f* for (f - f*)/|f*|: a finite nonzero number (``source`` names where it
    came from, e.g. ``--f-star`` or ``out.h5: attribute f_star``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{source}: {str(value)[:40]!r} is not a number") from None
    if not math.isfinite(v) or v == 0:
        raise UserError(f"{source}: {v!r}: f* must be a finite nonzero number (the "
                        "relative suboptimality (f - f*)/|f*| divides by it)")
    return v

"""``distnewton report``: one row per result file, as a table, CSV or JSON.

Columns: file, dataset, algorithm, workers, status, final loss, relative
suboptimality ``(f - f*)/|f*|``, test accuracy, iterations, communication
rounds, bytes (up + down), wall time; with ``--target`` the rounds, bytes and
seconds each run needed to reach the target (``not reached`` otherwise).

Targets (:func:`parse_target`): ``0.3234`` or ``loss:0.3234`` is a training
loss (first iteration with f <= 0.3234); ``rel:1e-6`` a relative
suboptimality (first iteration with (f - f*)/|f*| <= 1e-6, needs f*).

Where f* comes from (:func:`f_star_of`), first that applies: ``--f-star``; the
file (root attribute ``f_star``, or ``run.f_star`` in its config); the f*
cache; computing it once with ``newton`` on the run's own data and model
(sim backend, one worker; at most 500 rounds to ||grad|| <= 1e-13 ||grad f(0)||) and
storing it in the cache.  A newton run that ends otherwise than converged or stalled
(e.g. max_rounds on a badly conditioned multinomial problem) gives no f*: the report
warns and leaves the relative columns empty rather than print a wrong suboptimality.  The cache is
``fstar.json`` in distnewton's cache folder (``$DISTNEWTON_CACHE``, else
``$XDG_CACHE_HOME/distnewton``, else ``~/.cache/distnewton``), keyed by the
data set's sha256, loss, lambda, feature count and intercept.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError
from .io.read import Run, load, reaching, reaching_loss
from .io.validate import check_f_star


# -- inputs -----------------------------------------------------------------
def expand_paths(paths):
    """Result files: files as given, folders -> their ``*.h5`` (sorted)."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(q for q in p.glob("*.h5") if not q.name.startswith("."))
            if not found:
                raise UserError(f"{p}: folder holds no .h5 result files")
            out.extend(found)
        else:
            out.append(p)
    if not out:
        raise UserError("no result files given")
    return [str(p) for p in out]


@dataclass(frozen=True)
class Target:
    kind: str          # "loss" or "rel"
    value: float

    def __str__(self):
        return f"loss <= {self.value:g}" if self.kind == "loss" else \
            f"(f - f*)/|f*| <= {self.value:g}"


def parse_target(text) -> Target | None:
    """``0.3234`` / ``loss:0.3234`` (a loss) or ``rel:1e-6`` (relative suboptimality)."""
    if text is None:
        return None
    kind, _, value = text.rpartition(":")
    kind = kind.strip().lower() or "loss"
    if kind not in ("loss", "rel"):
        raise UserError(f"--target {text}: expected a loss (0.3234 or loss:0.3234) or a "
                        "relative suboptimality (rel:1e-6)")
    try:
        v = float(value)
    except ValueError:
        raise UserError(f"--target {text}: '{value}' is not a number") from None
    if not math.isfinite(v) or (kind == "rel" and v <= 0):
        raise UserError(f"--target {text}: must be a finite number"
                        + (" > 0" if kind == "rel" else ""))
    return Target(kind, v)


# -- f* ---------------------------------------------------------------------
def fstar_cache_path() -> Path:
    from .data.registry import cache_root
    return cache_root() / "fstar.json"


def _config(run: Run) -> dict:
    """The run's config attribute as a dict (a damaged one is a UserError)."""
    from .io.validate import config_of
    return config_of(run.path, run.attrs)


def fstar_key(run: Run) -> str:
    from .weights import weights_key
    a = run.attrs
    model = _config(run).get("model") or {}
    intercept = bool(model.get("fit_intercept", False))
    free = intercept and not model.get("regularize_intercept", True)
    loss = a.get('loss', '?') + ("/multinomial" if a.get("multiclass") == "multinomial" else "")
    return (f"{a.get('dataset_sha256', '?')}|{loss}|"
            f"lambda={float(a.get('lambda', math.nan))!r}|d={int(a.get('n_features', -1))}|"
            f"intercept={intercept}" + ("|free_intercept" if free else "")
            + ("|standardize" if model.get("standardize") else "")
            + weights_key(_config(run)))


def _read_cache():
    path = fstar_cache_path()
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(key, entry):
    path = fstar_cache_path()
    data = _read_cache()
    data[key] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        print(f"distnewton: warning: cannot write the f* cache {path}: {exc}", file=sys.stderr)


#: the ends of the f* run whose best loss is the optimum: the gradient test met, or
#: no further decrease at machine precision (grad_rtol 1e-13 is below what some
#: problems reach); any other (max_rounds, diverged) leaves f* unknown
F_STAR_STATUSES = ("converged", "stalled")
#: the f* run's round budget
F_STAR_ROUNDS = 500


def compute_f_star(run: Run) -> dict:
    """f* of the run's problem: ``newton`` on its data and model (sim, one worker;
    a split: one per part), with :func:`distnewton.solve`."""
    from .api import solve
    from .io.provenance import now
    cfg = _config(run)
    if not cfg.get("data") or not cfg.get("model"):
        raise UserError(f"{run.path}: no config attribute: cannot compute f* (pass --f-star)")
    data = dict(cfg["data"], test=None)
    model = {k: v for k, v in cfg["model"].items() if k != "w0"}     # f*: a cold start
    raw = {"data": data, "model": model, "algorithm": {"name": "newton"},
           "run": {"max_rounds": F_STAR_ROUNDS, "grad_rtol": 1e-13, "seed": 0}}
    try:
        workers = 1
        if data.get("shards"):                 # a split: as many (simulated) workers as parts
            from .data.split import read_manifest
            workers = read_manifest(data["shards"])["n_parts"]
        res = solve(raw, backend="sim", workers=workers, warn=False)
    except UserError as exc:
        raise UserError(f"{run.path}: cannot compute f* ({exc}); run the report from the "
                        "folder the run was started in, or pass --f-star") from None
    if res.status not in F_STAR_STATUSES:     # its best loss is no optimum: say so
        raise UserError(f"{run.path}: cannot compute f*: newton ended {res.status} after "
                        f"{res.rounds} rounds (||grad|| {res.history['grad_norm'][-1]:.3g}); "
                        "pass --f-star")
    want = run.attrs.get("dataset_sha256")
    if want and res.attrs["dataset_sha256"] != want:
        raise UserError(f"{run.path}: cannot compute f*: {res.attrs['dataset']} has changed "
                        "since the run (sha256 differs); pass --f-star")
    return {"f_star": float(np.min(res.history["loss"])), "dataset": str(res.attrs["dataset"]),
            "loss": res.attrs["loss"], "lambda": float(res.attrs["lambda"]),
            "status": res.status, "grad_norm": float(res.history["grad_norm"][-1]),
            "rounds": res.rounds, "computed": now()}


def f_star_of(run: Run, given=None, compute=True, memo=None):
    """(f*, source) for ``run``; (None, reason) when unknown.  See the module doc."""
    if run.attrs.get("multiclass") == "ovr":
        return None, "none: one-vs-rest (a loss per class; see class_rounds, class_status)"
    if given is not None:
        return check_f_star(given, "--f-star"), "--f-star"
    value = run.attrs.get("f_star")
    if value is not None and value != "":
        return check_f_star(value, f"{run.path}: attribute f_star"), "file"
    value = (_config(run).get("run") or {}).get("f_star")
    if value is not None:
        return (check_f_star(value, f"{run.path}: attribute config: run.f_star"),
                "file (run.f_star)")
    key = fstar_key(run)
    if memo is not None and key in memo:
        return memo[key]
    cached = _read_cache().get(key)
    if cached is not None:
        entry = cached.get("f_star") if isinstance(cached, dict) else cached
        out = (check_f_star(entry, f"{fstar_cache_path()}: entry {key}: f_star "
                            "(remove the entry, or pass --f-star)"), "cache")
    elif not compute:
        out = (None, "unknown (--no-compute)")
    else:
        try:
            entry = compute_f_star(run)
        except UserError as exc:
            print(f"distnewton: warning: {exc}", file=sys.stderr)
            out = (None, "unknown")
        else:
            _write_cache(key, entry)
            out = (entry["f_star"], "computed")
    if memo is not None:
        memo[key] = out
    return out


# -- rows -------------------------------------------------------------------
def rel_subopt(loss, f_star):
    if f_star is None:
        return None
    return (np.asarray(loss, dtype=np.float64) - f_star) / (abs(f_star) or 1.0)


def target_row(run: Run, f_star, target: Target):
    """The :func:`~distnewton.results.reaching` dict for ``target``, None if not reached.

    Raises ``LookupError`` for a relative target with f* unknown.
    """
    if target.kind == "loss":
        return reaching_loss(run.history, target.value)
    if f_star is None:
        raise LookupError("f* unknown")
    return reaching(run.history, f_star, target.value)


def _last(h, key):
    v = h[key][-1]
    return v.item() if hasattr(v, "item") else v


def summarize(run: Run, f_star=None, f_source="", target: Target | None = None) -> dict:
    h, a = run.history, run.attrs
    loss = float(_last(h, "loss"))
    acc = float(_last(h, "test_accuracy"))
    if a.get("multiclass") == "ovr":  # the argmax's accuracy (the file's attribute)
        acc = float(a.get("test_accuracy", math.nan))
    row = {
        "file": run.path, "dataset": os.path.basename(str(a.get("dataset", ""))),
        "algorithm": a.get("algorithm", ""), "workers": int(a.get("n_workers", 0)),
        "backend": a.get("backend", ""), "status": a.get("status", ""), "loss": loss,
        "rel_subopt": None if f_star is None else float(rel_subopt(loss, f_star)),
        "f_star": f_star, "f_star_source": f_source,
        "test_accuracy": None if math.isnan(acc) else acc,
        "iterations": int(_last(h, "iteration")), "rounds": int(_last(h, "comm_rounds")),
        "bytes": int(_last(h, "bytes_up")) + int(_last(h, "bytes_down")),
        "wall_time": float(_last(h, "wall_time")),
    }
    if a.get("standardize"):         # model.standardize: its setup round's bytes
        row["standardize_bytes"] = int(a.get("standardize_bytes", 0))
    if "modelled_time" in h:
        row["modelled_time"] = float(_last(h, "modelled_time"))
    if "validation_loss" in h:       # data.validation: the last row's and the best
        row["validation_loss"] = float(_last(h, "validation_loss"))
        row["best_validation_loss"] = float(np.nanmin(h["validation_loss"]))
    for key in ("time_compute", "time_comm", "time_idle"):      # absent before 0.2
        row[key] = float(_last(h, key)) if key in h else None
    if target is not None:
        row["target"] = str(target)
        try:
            hit = target_row(run, f_star, target)
        except LookupError:
            hit, row["target_reached"] = None, None
        else:
            row["target_reached"] = hit is not None
        for key, src in (("target_iteration", "iteration"), ("target_rounds", "comm_rounds"),
                         ("target_bytes", "bytes"), ("target_seconds", "wall_time"),
                         ("target_modelled_time", "modelled_time")):
            if src == "modelled_time" and "modelled_time" not in h:
                continue
            row[key] = None if hit is None else hit[src]
    return row


def collect(paths, f_star=None, target=None, compute=True):
    """Load every file and summarize it (f* computed at most once per problem)."""
    memo, runs, rows = {}, [], []
    for path in expand_paths(paths):
        run = load(path)
        fs, src = f_star_of(run, f_star, compute=compute, memo=memo)
        runs.append((run, fs, src))
        rows.append(summarize(run, fs, src, target))
    return runs, rows


# -- output -----------------------------------------------------------------
TABLE = [("file", "file"), ("dataset", "dataset"), ("algorithm", "algorithm"),
         ("workers", "K"), ("status", "status"), ("loss", "loss"),
         ("rel_subopt", "rel_subopt"), ("test_accuracy", "test_acc"),
         ("iterations", "iters"), ("rounds", "rounds"), ("bytes", "bytes"),
         ("wall_time", "seconds"), ("time_comm", "comm_s")]
#: shown when a run has data.validation's column
VALIDATION_COLS = [("best_validation_loss", "best_val_loss")]
#: model.standardize runs: the bytes of its setup round (standardized runs only)
STANDARDIZE_COLS = [("standardize_bytes", "standardize_setup")]
TARGET_COLS = [("target_rounds", "rounds@target"), ("target_bytes", "bytes@target"),
               ("target_seconds", "seconds@target")]


def _cell(key, value, row):
    if key.startswith("target_") and value is None:
        return "f* unknown" if row.get("target_reached") is None else "not reached"
    if value is None:
        return "-"
    if key == "file":
        return os.path.basename(value)
    if key == "loss":
        return f"{value:.10e}"
    if key in ("rel_subopt", "best_validation_loss"):
        return f"{value:.3e}"
    if key == "test_accuracy":
        return f"{value:.4f}"
    if key in ("bytes", "target_bytes", "standardize_bytes"):
        from .progress import human_bytes
        return human_bytes(value)
    if key in ("wall_time", "target_seconds", "time_comm"):
        return f"{value:.3f}"
    return str(value)


def render(rows, fmt="table", target=None) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=1) + "\n"
    if fmt == "csv":
        keys = list(dict.fromkeys(k for r in rows for k in r))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if r.get(k) is None else r.get(k) for k in keys})
        return buf.getvalue()
    cols = TABLE + (VALIDATION_COLS if any("validation_loss" in r for r in rows) else []) \
        + (STANDARDIZE_COLS if any("standardize_bytes" in r for r in rows) else []) \
        + (TARGET_COLS if target is not None else [])
    cells = [[title for _, title in cols]]
    cells += [[_cell(k, r.get(k), r) for k, _ in cols] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    left = {"file", "dataset", "algorithm", "status"}
    lines = ["  ".join(c.ljust(w) if k in left else c.rjust(w)
                       for c, w, (k, _) in zip(line, widths, cols)) for line in cells]
    notes = []
    seen = set()
    for r in rows:
        key = (r["dataset"], r["f_star"], r["f_star_source"])
        if key not in seen:
            seen.add(key)
            fs = "unknown" if r["f_star"] is None else f"{r['f_star']:.15e}"
            notes.append(f"f* {r['dataset']}: {fs} ({r['f_star_source']})")
    if target is not None:
        notes.append(f"target: {target}")
    return "\n".join(lines + [""] + notes) + "\n"

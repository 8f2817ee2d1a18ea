"""``model.multiclass: ovr``: one-vs-rest logistic regression over C classes.

For each class c (the sorted raw training labels) the configured algorithm
solves the binary problem with targets y_j = +1 if the row's label is c, else -1,

    min_w  (1/n) sum_j log(1 + exp(-y_j x_j.w)) + (lambda/2) ||w||^2,

on the same workers and shards: the data is read, partitioned and sent once;
between two classes one logging-only round (``multiclass.relabel``, 2 floats
down, 1 up: the class and the seed down, the shard's count of class-c rows up,
which the master checks against its own) relabels every shard and resets the
workers' algorithm state and random streams, so class c's run is exactly the
binary run of ``data.positive_labels: [c]``.

The result is one file: ``/model/w`` of shape (C, d), row i the model of class
``classes[i]``; ``/history`` the C runs' rows one after another with a
``class_index`` column, the counters (iteration, rounds, bytes, seconds)
continuing across classes, so the last row holds the totals; root attributes
``multiclass`` ("ovr"), ``classes``, and per class ``class_rounds``,
``class_bytes_up``, ``class_bytes_down``, ``class_iterations``,
``class_status``.  The status is ``converged`` when every class converged,
else the first other class's status.  Prediction is the argmax of the C
decision values; probabilities are the C sigmoids normalised to sum to 1
(scikit-learn's one-vs-rest rule).  Multinomial (softmax) logistic regression
is ``model.multiclass: multinomial`` (:mod:`distnewton.multinomial`).  Not supported with ovr (each an exit-2 error naming the
key): ``data.positive_labels``, ``model.class_weight``, ``model.w0``,
``data.shards``, loss ridge; ``--resume`` and ``run.checkpoint_every``.  The
L2-loss SVM (``model.loss: squared_hinge``) runs one-vs-rest the same way, as
LIBLINEAR's ``-s 2`` and LinearSVC do, with the squared hinge in place of the
logistic loss (and no probabilities).
"""

from __future__ import annotations

import numpy as np

from .errors import UserError
from .io.record import History
from .io.schema import TIMING_COLUMNS
from .runtime import worker_rng, worker_task


def _key(v: float):
    return int(v) if float(v).is_integer() else float(v)


def ovr_labels(y, source, reference=None, loss="logistic"):
    """(raw labels, label map) of an ovr run: the map records the loss (logistic
    or squared_hinge), the sorted classes and each row's class count; with
    ``reference`` (a test set) the training map is kept and labels it does not
    know are a UserError naming ``source``."""
    y = np.asarray(y, dtype=np.float64)
    values = np.unique(y)
    if reference is not None:
        known = np.array(reference["classes"], dtype=np.float64)
        unknown = [_key(v) for v in values if v not in known]
        if unknown:
            raise UserError(f"{source}: label(s) {unknown[:10]} do not occur in the training "
                            f"classes {[_key(c) for c in known]}")
        return y.copy(), reference
    if len(values) < 2:
        raise UserError(f"{source}: model.multiclass: ovr needs at least 2 classes, "
                        f"found {len(values)}")
    counts = [int(np.sum(y == v)) for v in values]
    return y.copy(), {"loss": loss, "rule": "ovr", "positive_labels": None,
                      "classes": [_key(v) for v in values], "counts": counts,
                      "map": {str(_key(v)): float(i) for i, v in enumerate(values)}}


@worker_task("multiclass.relabel")
def relabel(ctx, down):
    """Targets of class c on this shard (+1 for c, -1 else), fresh algorithm
    state and random stream; replies the shard's count of class-c rows."""
    c, seed = float(down[0]), int(down[1])
    shard = ctx.shard
    if not hasattr(shard, "raw_labels"):
        shard.raw_labels = shard.y.copy()
    shard.set_targets(np.where(shard.raw_labels == c, 1.0, -1.0))
    ctx.state.clear()
    ctx.scratch.clear()
    ctx.rng = worker_rng(seed, ctx.k)
    return np.array([float(np.sum(shard.raw_labels == c))])


def drive_ovr(session):
    """The C binary runs on the session's runtime one after another (each a
    :class:`~distnewton.loop.Loop` watched by the session's line printer only:
    ovr runs are not checkpointed): the combined :class:`OvROutcome`."""
    rt, cfg, setup, printer = session.rt, session.cfg, session.setup, session.printer
    lm = setup.label_map
    classes, counts = lm["classes"], lm["counts"]
    runs = []
    for i, c in enumerate(classes):
        rt.reset_counters()                        # each class counts from zero
        with rt.evaluating():
            n_c = rt.round("multiclass.relabel", [float(c), float(cfg["run"]["seed"])], up=1)
        if int(round(float(n_c[0]))) != counts[i]:
            raise RuntimeError(f"multiclass: the workers hold {float(n_c[0]):.0f} rows of "
                               f"class {c}, the master counted {counts[i]}")
        test = None if setup.test is None else (
            setup.test[0], np.where(setup.test[1] == float(c), 1.0, -1.0))
        printer.message(f"class {c} ({i + 1} of {len(classes)}, {counts[i]} rows)")
        out = session.loop(test, monitors=[printer]).iterate()
        runs.append((out, rt.eval.rounds, rt.eval.bytes_up + rt.eval.bytes_down))
        if out.status == "stopped":
            break
    return OvROutcome.combine(runs, classes, setup.test)


class OvROutcome:
    """The C runs as one :class:`~distnewton.io.record.Outcome` (``w`` is C x d)."""

    state = None

    def __init__(self, alg, history, status, message, w, attrs):
        self.alg, self.history, self.status, self.message = alg, history, status, message
        self.w, self.attrs = w, attrs

    @classmethod
    def combine(cls, runs, classes, test):
        alg = runs[-1][0].alg
        hist = History({**type(alg).columns, "class_index": np.int64})
        offsets = dict.fromkeys(("iteration", "comm_rounds", "bytes_up", "bytes_down",
                                 "wall_time", "modelled_time", *TIMING_COLUMNS), 0)
        per = {k: [] for k in ("rounds", "bytes_up", "bytes_down", "iterations")}
        for i, (out, _, _) in enumerate(runs):
            cols = out.history.arrays()
            for j in range(len(out.history)):
                row = {k: v[j] for k, v in cols.items()}
                row.update({k: row[k] + off for k, off in offsets.items() if k in row})
                hist.append(**row, class_index=i)
            last = {k: cols[k][-1] for k in offsets if k in cols}
            per["rounds"].append(int(last["comm_rounds"]))
            per["bytes_up"].append(int(last["bytes_up"]))
            per["bytes_down"].append(int(last["bytes_down"]))
            per["iterations"].append(int(last["iteration"]))
            for k in last:
                offsets[k] = offsets[k] + last[k]
        statuses = [out.status for out, _, _ in runs]
        done = len(runs) == len(classes)
        bad = next((k for k, s in enumerate(statuses) if s != "converged"), None)
        if bad is None and done:
            status, message = "converged", f"all {len(classes)} classes converged"
        else:
            k = bad if bad is not None else len(runs) - 1
            status = statuses[k]
            message = (f"class {classes[k]}: {runs[k][0].message} "
                       f"({sum(s == 'converged' for s in statuses)} of {len(classes)} "
                       "classes converged)")
        W = np.vstack([out.w for out, _, _ in runs])
        attrs = {"multiclass": "ovr", "classes": np.array(classes, dtype=np.float64),
                 "class_rounds": np.array(per["rounds"], dtype=np.int64),
                 "class_bytes_up": np.array(per["bytes_up"], dtype=np.int64),
                 "class_bytes_down": np.array(per["bytes_down"], dtype=np.int64),
                 "class_iterations": np.array(per["iterations"], dtype=np.int64),
                 "class_status": ",".join(statuses),
                 # logging-only rounds of every class, the relabel rounds among them
                 "eval_rounds": int(sum(r for _, r, _ in runs)),
                 "eval_bytes": int(sum(b for _, _, b in runs))}
        if test is not None and done:
            Z = test[0] @ W.T
            pred = np.array(classes, dtype=np.float64)[np.argmax(Z, axis=1)]
            attrs["test_accuracy"] = float(np.mean(pred == test[1]))
        return cls(alg, hist, status, message, W, attrs)

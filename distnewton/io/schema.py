"""The HDF5 result format: its version, its columns and attributes, what each means.

This module is the format's one description; :mod:`.write` and :mod:`.read`
follow it, and the documentation's "Result format" page is generated from it.
It imports no third-party package (``import distnewton`` stays light).

Layout (``schema_version`` 1; later versions only add):

- root attributes (:data:`ROOT_ATTRIBUTES`), written by
  :func:`distnewton.io.provenance.root_attributes`;
- ``/history``: equal-length 1-D datasets, one entry per iteration starting
  with the initial point: :data:`BASE_COLUMNS`, :data:`TIMING_COLUMNS` and the
  algorithm's own (:data:`ALGORITHM_COLUMNS`), each with a ``description``
  attribute;
- ``/model/w``: the final weights (``classes x d`` for one-vs-rest), with the
  attributes :data:`MODEL_ATTRIBUTES` (added in 0.3: ``intercept_index``);
- ``/checkpoint`` (optional): the state a ``--resume`` continues from
  (:mod:`distnewton.io.checkpoint`).

A file records its ``schema_version``; this distnewton reads versions
``1..SCHEMA_VERSION`` (:func:`check_version`) and files without the columns
and attributes added later (they read as absent or NaN).
"""

from __future__ import annotations

import re

from ..errors import UserError

#: Version of the layout (root attribute ``schema_version``).
SCHEMA_VERSION = 1

#: The history columns every run has: name -> (dtype, meaning with units).
BASE_COLUMNS = {
    "iteration": ("int64", "iteration number, 0 = initial point"),
    "comm_rounds": ("int64", "communication rounds charged to the algorithm (cumulative)"),
    "bytes_up": ("int64", "bytes workers -> master (cumulative)"),
    "bytes_down": ("int64", "bytes master -> workers (cumulative)"),
    "loss": ("float64", "global training objective f(w) at the master's model"),
    "grad_norm": ("float64", "||grad f(w)||_2"),
    "test_accuracy": ("float64", "accuracy on the test set (NaN without one, or for ridge)"),
    "test_loss": ("float64", "mean data loss on the test set, no regularisation (NaN without)"),
    "wall_time": ("float64", "seconds (cumulative), excluding logging-only evaluation"),
    "step_size": ("float64", "step size taken in this iteration (NaN at iteration 0)"),
}

#: Time breakdown columns (cumulative seconds, like wall_time; added in 0.2,
#: so files written before lack them and still load).
#: time_compute + time_comm = wall_time.
TIMING_COLUMNS = {
    "time_compute": ("float64", "seconds computing (cumulative): the master's own work in "
                     "the iterations plus, per round, the slowest worker's task (mpi) or "
                     "the sum over workers (sim, where they run in turn)"),
    "time_comm": ("float64", "seconds of the rounds not spent computing (cumulative): "
                  "latency, transfer, reduction, waiting for descheduled ranks"),
    "time_idle": ("float64", "load imbalance (cumulative): sum over rounds of the "
                  "slowest worker's task time minus the mean worker's"),
}

#: Columns a run adds beside the algorithm's (name -> meaning).
RUN_COLUMNS = {
    "modelled_time": "wall_time plus run.latency_model's per_round x rounds + per_byte x "
                     "bytes (seconds, cumulative; only with run.latency_model)",
    "validation_loss": "mean data loss on data.validation's rows, no regularisation "
                       "(logging only; only with data.validation; run.early_stopping "
                       "watches it)",
    "validation_accuracy": "accuracy on data.validation's rows (logistic; NaN for ridge; "
                           "only with data.validation)",
    "class_index": "model.multiclass ovr: which class's binary run the row belongs to "
                   "(0-based index into the root attribute classes)",
}

#: The built-in algorithms' own history columns: name -> meaning (units, what
#: is counted).  A plugin's columns without an entry are described by their name.
ALGORITHM_COLUMNS = {
    "cg_iterations": "conjugate-gradient iterations (Hessian-vector products, one round "
                     "each) of this iteration's Newton-CG or TRON solve; 0 for a direct solve",
    "trust_radius": "newton solver tron: the trust-region radius Delta after this "
                    "iteration's update (NaN for the other solvers)",
    "L": "adaptive_localnewton: local Newton steps per worker in this iteration's round "
         "(0 in the GIANT phase)",
    "phase": "adaptive_localnewton: localnewton or giant",
    "ls_trials": "lbfgs, owlqn: line-search trial points evaluated (one round each)",
    "nnz": "owlqn: non-zero weights after the iteration (an L1 model's sparsity)",
    "coverage_min": "ranl: fewest workers covering a region (coordinate block) this round",
    "coverage_mean": "ranl: mean workers per region this round",
    "staleness": "ranl: mean age in iterations of the (worker, region) blocks aggregated "
                 "(0 when all are fresh)",
    "hessian_computed": "ranl: 1 when this iteration had a Hessian round, else 0",
    "hessian_gap": "fednl: l, the mean ||Hess f_i(x_k) - H_i||_F over the clients that "
                   "sent it (option 2 or PP; NaN otherwise)",
    "participants": "fednl: clients that took part in this round",
    "pcg_iterations": "disco: T, the PCG iterations of this Newton step (one Hessian-vector "
                      "round to all workers each, and T preconditioner rounds to worker 0 "
                      "but the last)",
    "newton_decrement": "disco: delta_k = sqrt(v_k^T Hess f(w_k) v_k) of the inexact Newton "
                        "step v_k; the step is v_k / (1 + delta_k)",
    "dhat_min": "scaled localsgd (global mode): smallest entry of the shared diagonal "
                "scaling D_hat used in the next round (NaN in local and identity modes)",
    "dhat_median": "scaled localsgd (global mode): median entry of D_hat (NaN otherwise)",
    "dhat_max": "scaled localsgd (global mode): largest entry of D_hat (NaN otherwise)",
    "clipped": "scaled localsgd (global mode): fraction of coordinates with D_hat = alpha "
               "(NaN otherwise)",
    "dist_opt": "ist (ridge analysis): ||x^k - x*||_2",
    "dist_bound": "ist: the x-space bound on ||x^k - x*|| after k IST rounds",
    "bias": "ist: ||S m - x*||_2, the fixed point's bias",
    "radius": "ist: R, the neighbourhood radius of the bound",
    "rho": "ist: the contraction factor rho",
    "h_norm": "ist: ||h||_L",
    "sigma2": "ist: sigma^2(x^k), the sketch variance at the iterate",
    "theta": "ist: theta (inf when W_bar is not positive definite)",
    "W_min": "ist: smallest eigenvalue of W_bar",
    "W_max": "ist: largest eigenvalue of W_bar",
    "grad_avg": "ist: (1/k) sum_{t<k} ||grad f(x^t)||^2 in the L^-1 norm",
    "bound19": "ist: right-hand side of (19) (NaN outside its hypotheses)",
    "grad_avg_W": "ist: the same average in the L^-1 W_bar L^-1 norm",
    "bound24": "ist: right-hand side of (24) (NaN unless b_i = 0 and gamma <= 1/theta)",
}

#: Root attributes: name -> meaning.
ROOT_ATTRIBUTES = {
    "schema_version": "version of this layout (integer)",
    "distnewton_version": "the distnewton that wrote the file",
    "algorithm": "algorithm.name",
    "loss": "logistic, ridge, squared_hinge or poisson (added in 0.3)",
    "lambda": "the L2 weight lambda (a number, '1/n' resolved; with model.l1_ratio its "
              "L2 part)",
    "l1": "the L1 weight lambda_1 of lambda_1 ||w||_1 (0: none; added in 0.3)",
    "n_workers": "K, the number of (logical) workers",
    "backend": "sim or mpi",
    "master_shard": "rank 0 hosted workers too (run.master_shard)",
    "dataset": "the training file, as given (or <in-memory>)",
    "dataset_sha256": "sha256 of the training file as stored (of the arrays in memory)",
    "n_samples": "n, training rows over all workers",
    "n_features": "d, features including the intercept column",
    "shard_sizes": "n_k, the rows of each worker (int64 array)",
    "seed": "run.seed",
    "partition_seed": "data.seed",
    "status": "converged, max_rounds, max_iterations, stalled, diverged or stopped",
    "message": "why the run stopped (one line)",
    "mpi_library": "first line of MPI_Get_library_version, or none (sim backend)",
    "started": "ISO 8601 start time",
    "finished": "ISO 8601 time of writing",
    "config": "the resolved config as YAML text",
    "label_map": "how raw labels became targets (repr of a dict; see label_map_json)",
    "label_map_json": "the same label map as JSON (added in 0.3)",
    "dataset_cache": "the training rows came from the binary cache ('read FOLDER'), were "
                     "parsed and cached ('written FOLDER'), or were parsed with no cache "
                     "('') (data.cache; added in 0.3)",
    "setup_seconds_json": "parallel ingestion only: seconds of each setup phase on the "
                          "slowest rank, as JSON (plan: cache lookup and decompression; "
                          "read, parse: the text; cache_read; assemble: the CSR; "
                          "cache_write; hash: the file's sha256; labels_partition; "
                          "exchange: Alltoallv; test_set) (added in 0.3)",
    "setup_bytes": "bytes sent to distribute the shards",
    "eval_rounds": "logging-only evaluation rounds (never charged to the algorithm)",
    "standardize": "model.standardize: the penalty weighs the coefficients by the column "
                   "standard deviations /model/sigma (Spark's standardization=true; added "
                   "in 0.3)",
    "standardize_bytes": "bytes of model.standardize's setup round (the column moments up, "
                         "the penalty weights down; 0 without it; added in 0.3)",
    "eval_bytes": "logging-only evaluation bytes, up + down",
    "argv": "the command line",
    "hostname": "rank 0's host",
    "python": "Python version",
    "numpy": "numpy version",
    "scipy": "scipy version",
}

#: The kinds of the root attributes a reader relies on (int, number, text),
#: checked whenever a result is read (:func:`distnewton.io.validate.check_parts`);
#: an absent one is not checked here (files of every 1.x layout lack some).
#: ``f_star``: the optimal value, when a file records it (``report`` uses it).
ATTRIBUTE_KINDS = {
    "schema_version": "int", "n_samples": "int", "n_features": "int", "n_workers": "int",
    "setup_bytes": "int", "eval_rounds": "int", "eval_bytes": "int", "standardize_bytes": "int",
    "lambda": "number", "f_star": "number", "l1": "number",
    "distnewton_version": "text", "algorithm": "text", "loss": "text", "status": "text",
    "message": "text", "config": "text", "label_map": "text", "label_map_json": "text",
    "multiclass": "text", "dataset": "text", "backend": "text",
}

#: Attributes of ``/model/w``: name -> meaning (added in 0.3).
MODEL_ATTRIBUTES = {
    "intercept_index": "index of the intercept in the last axis of w (-1: no intercept; "
                       "model.fit_intercept appends it as the last entry)",
    "regularized_intercept": "the intercept is in the L2 penalty (LIBLINEAR's convention)",
}


def column_description(name: str, docs: dict | None = None) -> str:
    """What history column ``name`` holds: ``docs[name]`` (a plugin's own words),
    else its entry here, else its name."""
    if docs and docs.get(name) not in (None, name):
        return docs[name]
    for table in (BASE_COLUMNS, TIMING_COLUMNS):
        if name in table:
            return table[name][1]
    return RUN_COLUMNS.get(name) or ALGORITHM_COLUMNS.get(name) or name


def standard_dtypes() -> dict:
    """name -> dtype of the columns every run has."""
    return {k: v[0] for k, v in {**BASE_COLUMNS, **TIMING_COLUMNS}.items()}


def check_version(path, version):
    """UserError unless this distnewton reads schema ``version``."""
    if int(version) > SCHEMA_VERSION:
        raise UserError(f"{path}: schema version {int(version)} is newer than this "
                          f"distnewton reads ({SCHEMA_VERSION}): upgrade distnewton")
    if int(version) < 1:
        raise UserError(f"{path}: schema version {int(version)} is older than any "
                          f"this distnewton reads (1..{SCHEMA_VERSION})")


def check_history(path, history, version):
    """UserError unless ``history`` has every base column, all of one non-zero length."""
    missing = [k for k in BASE_COLUMNS if k not in history]
    if missing:
        raise UserError(f"{path}: history lacks {', '.join(missing)} (schema version "
                          f"{int(version)}: damaged file or not written by distnewton)")
    if len({len(v) for v in history.values()}) != 1 or not len(history["iteration"]):
        raise UserError(f"{path}: history columns are empty or of unequal length "
                          "(damaged file)")


#: Control characters dropped from strings (all of C0, DEL and C1 but tab, newline).
CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(text) -> str:
    """``text`` as a string HDF5 stores: valid UTF-8, no control characters.

    Bytes smuggled into a str by ``surrogateescape`` (``sys.argv``, file names
    that are not UTF-8) are decoded as UTF-8 where they are valid and become
    U+FFFD where not; any other lone surrogate becomes U+FFFD; NUL and the
    other control characters except tab and newline are removed (``MPI.
    Get_library_version()`` of Open MPI ends in a NUL).  Bytes are decoded as
    UTF-8 the same way.  Everything else is kept as it is.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    text = str(text)
    if SURROGATES.search(text):
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:              # a surrogate not made by surrogateescape
            pass
        text = SURROGATES.sub("\ufffd", text)
    return CONTROL_CHARS.sub("", text)


def clean_attr(value):
    """An attribute value as written: None -> "", strings through :func:`clean_text`."""
    if value is None:
        return ""
    if isinstance(value, (str, bytes)):
        return clean_text(value)
    if isinstance(value, (list, tuple)) and any(isinstance(v, (str, bytes)) for v in value):
        return [clean_text(v) for v in value]
    return value


def json_value(value):
    """``json.dumps``'s ``default``: numpy scalars and arrays as Python values,
    anything else as its text."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)

"""The config's keys: every section's :class:`~distnewton.params.Param` (type,
default, check and the doc line ``distnewton config`` prints), in the order of a
config file.  :mod:`distnewton.config` validates a config against them; the
algorithm's own keys are declared by the algorithm classes (``Algorithm.params``).
"""

from __future__ import annotations

from .params import (
    BOOL,
    FLOAT,
    INT,
    STR,
    Param,
    at_least,
    between,
    nonneg,
    positive,
    seed,
)


#: K of the sim backend when ``run.workers`` is not set (over MPI: one per worker rank)
SIM_WORKERS = 4

#: the losses users bring from LIBLINEAR and scikit-learn that ``model.loss`` does
#: not take, with what to use instead (appended to the one-line choices error)
LOSS_HINTS = {
    "hinge": "the hinge loss (L1-loss SVM, LIBLINEAR -s 3) is not differentiable, so no "
             "Newton method applies; use squared_hinge, the L2-loss SVM (LIBLINEAR -s 2)",
    "log_loss": "scikit-learn's log_loss is logistic here",
    "squared_error": "scikit-learn's squared_error is ridge here",
}


def _above_one(x):
    """run.divergence_factor: a factor of 1 or less would stop descent runs' noise."""
    return None if x > 1 else f"must be > 1, got {x}"


SCHEMA: dict[str, dict[str, Param]] = {
    "data": {
        "train": Param(STR, None, "training set: a LIBSVM file (plain, .bz2, .gz), a CSV, "
                       "TSV, NumPy, Parquet or HDF5 file (data.format) or a registered data "
                       "set name (`distnewton data list`)"),
        "shards": Param(STR, None, "folder written by `distnewton data split` (instead of "
                        "train): each worker reads only its own part", nullable=True),
        "test": Param(STR, None, "optional test set for test_accuracy", nullable=True),
        "validation": Param(FLOAT + STR, None, "validation rows for run.early_stopping and "
                            "the history's validation_loss: a file (a string; any format "
                            "data.train takes) or a number in (0, 1), that fraction of the "
                            "training rows held out with data.seed before the partition "
                            "(not trained on; n counts the rest); the master evaluates them "
                            "every iteration, logging only, no communication round",
                            nullable=True),
        "n_features": Param(INT, None, "feature count (default: largest index in train)",
                            check=positive, nullable=True),
        "zero_based": Param(BOOL, False, "feature indices start at 0"),
        "format": Param(STR, "auto", "the format of train and test: auto (by content, then "
                        "extension), libsvm, csv, tsv, npy, npz (X and y, scipy.sparse "
                        "save_npz, or one array), parquet or hdf5 (CSR datasets and y)",
                        choices=("auto", "libsvm", "csv", "tsv", "npy", "npz", "parquet",
                                 "hdf5")),
        "label_column": Param((int, str), None, "csv, tsv, npy, npz and parquet: the label "
                              "column, a number from 0 (negative: from the end) or a header "
                              "name (default: the first column; parquet: a column named "
                              "label, y, target or class if there is one)", nullable=True),
        "positive_labels": Param((list,), None, "labels mapped to +1 (others -1) for logistic",
                                 nullable=True),
        "partition": Param(STR, "iid", "how rows are split over workers",
                           choices=("iid", "contiguous", "label_skew")),
        "partition_alpha": Param(FLOAT, 0.5, "Dirichlet alpha of label_skew", check=positive),
        "rows_per_worker": Param(INT, None, "keep exactly this many rows per worker, drawn "
                                 "from its part with data.seed (the FedNL papers' splits: "
                                 "the rows beyond workers x rows are left out)",
                                 check=positive, nullable=True),
        "seed": Param(INT, 0, "seed of the partition (and of synthetic data)", check=seed),
        "weights": Param(STR, None, "per-row sample weights: a text file with one number "
                         ">= 0 per training row (sharded with the rows)", nullable=True),
        "synth": Param((dict,), None, "generate `train` with these make_synthetic arguments "
                       "if the file does not exist", nullable=True),
        "cache": Param(STR + BOOL, "auto", "binary cache of parsed text files: auto (files "
                       "of 4 MiB or more, in $DISTNEWTON_CACHE/parsed, default ~/.cache/"
                       "distnewton/parsed), off (YAML's false too), or a folder (every file)"),
        "fetch": Param(STR, "never", "a registered data set (train, test) that is not "
                       "downloaded yet: never (stop with the `distnewton data fetch` command "
                       "to run) or auto (fetch and verify it first, as `data fetch` does; "
                       "`run --fetch`)", choices=("never", "auto")),
        "mirror": Param(STR, None, "where data.fetch: auto fetches from: a folder or URL "
                        "holding the registry's file names (a9a.bz2, ...) instead of the "
                        "LIBSVM site (`run --mirror`)", nullable=True),
    },
    "model": {
        "loss": Param(STR, "logistic", "objective: logistic (log(1 + exp(-y x.w))), ridge "
                      "((x.w - y)^2/2), squared_hinge (the L2-loss SVM max(0, 1 - y x.w)^2, "
                      "LIBLINEAR -s 2 with C = 1/(lambda n)) or poisson (Poisson regression, "
                      "log link: exp(x.w) - y x.w, labels y >= 0, the constant log(y!) "
                      "dropped); each averaged over the rows plus (lambda/2)||w||^2; hinge "
                      "(LIBLINEAR -s 3) is refused: not smooth",
                      choices=("logistic", "ridge", "squared_hinge", "poisson"),
                      hints=LOSS_HINTS),
        "lambda": Param(FLOAT + STR, "1/n", "L2 weight: a number >= 0 or '1/n'"),
        "fit_intercept": Param(BOOL, False, "append a constant feature 1 (regularised too)"),
        "regularize_intercept": Param(BOOL, True, "with fit_intercept: false leaves the "
                                      "intercept out of the L2 penalty (scikit-learn's and "
                                      "Spark's convention; LIBLINEAR regularises it)"),
        "standardize": Param(BOOL, False, "Spark ML's standardization=true: the L2 term "
                             "becomes (lambda/2) sum_j (sigma_j w_j)^2 and the L1 term "
                             "lambda_1 sum_j sigma_j |w_j|, sigma_j the column's sample "
                             "standard deviation over the training rows (weighted by the row "
                             "weights); constant columns get coefficient 0; w stays in the "
                             "original feature space (one setup round of 2d + 2 floats per "
                             "worker)"),
        "class_weight": Param(STR + (dict,), None, "logistic, squared_hinge: 'balanced' or "
                              "{label: weight} "
                              "(multiplies data.weights)", nullable=True),
        "multiclass": Param(STR, None, "logistic or squared_hinge with more than two classes: "
                            "'ovr' trains one binary problem per class (one-vs-rest) on the "
                            "same shards; 'multinomial' (loss logistic) trains one softmax "
                            "model of C x d weights in one run",
                            choices=("ovr", "multinomial"), nullable=True),
        "l1": Param(FLOAT, 0.0, "L1 weight lambda_1: adds lambda_1 ||w||_1 (the intercept "
                    "left out as from the L2 term with regularize_intercept: false); needs "
                    "algorithm.name: owlqn", check=nonneg),
        "l1_ratio": Param(FLOAT, None, "elastic net: the L1 share alpha of lambda, "
                          "lambda (alpha ||w||_1 + (1 - alpha)/2 ||w||^2) (Spark's "
                          "elasticNetParam, scikit-learn's l1_ratio with C = 1/(n lambda)); "
                          "needs algorithm.name: owlqn", check=between(0.0, 1.0),
                          nullable=True),
        "w0": Param(STR, None, "warm start: a result file (its /model/w) or a .npy vector of "
                    "d weights (d counts the intercept); default zeros", nullable=True),
    },
    "run": {
        "max_rounds": Param(INT, 100, "stop after this many communication rounds",
                            check=at_least(1)),
        "max_iterations": Param(INT, None, "stop after this many iterations",
                                check=at_least(1), nullable=True),
        "grad_norm": Param(FLOAT, None, "stop when ||grad f(w)|| <= this", check=positive,
                           nullable=True),
        "grad_rtol": Param(FLOAT, 1e-8, "stop when ||grad f(w)|| <= this * ||grad f(0)|| "
                           "(LIBLINEAR's eps)", check=positive, nullable=True),
        "liblinear_eps": Param(FLOAT, None, "stop by LIBLINEAR's rule (its -e, 0.01 there by "
                               "default): ||grad f(w)|| <= this * max(min(#pos, #neg), 1)/n * "
                               "||grad f(0)|| (logistic, squared_hinge; ridge: this * "
                               "||grad f(0)||)",
                               check=positive, nullable=True),
        "target_loss": Param(FLOAT, None, "stop when f(w) <= this", nullable=True),
        "target_subopt": Param(FLOAT, None, "stop when (f(w) - f*)/|f*| <= this (needs f_star)",
                               check=positive, nullable=True),
        "f_star": Param(FLOAT, None, "optimal value, for relative suboptimality", nullable=True),
        "backend": Param(STR, "auto", "mpi (real ranks), sim (one process) or auto",
                         choices=("auto", "mpi", "sim")),
        "workers": Param(INT, None, "number of workers K: simulated (backend sim; default "
                         f"{SIM_WORKERS}), or logical workers spread over the mpiexec job's P - 1 worker "
                         "ranks (backend mpi; default P - 1, one per rank)",
                         check=at_least(1), nullable=True),
        "master_shard": Param((str, bool), "auto", "backend mpi: rank 0 also hosts a block "
                              "of workers (true: K >= P workers on mpiexec -n P; auto: when "
                              "K >= P; false: ranks 1..P-1 only); iterates unchanged",
                              choices=("auto", True, False)),
        "blas_threads": Param(INT, 1, "BLAS threads per rank", check=at_least(1)),
        "seed": Param(INT, 0, "seed of the algorithms' random streams (worker k: (seed, k))",
                      check=seed),
        "early_stopping": Param(INT, None, "stop when the loss on data.validation has not "
                                "improved for this many iterations and keep the best model "
                                "by validation loss (status converged, the message says so; "
                                "null: off)", check=at_least(1), nullable=True),
        "divergence_patience": Param(INT, 20, "stop as diverged when the loss grows this many "
                                     "iterations in a row (0: never)", check=nonneg),
        "divergence_factor": Param(FLOAT, 10.0, "stop as diverged when the loss exceeds this "
                                   "many times the reference loss max(f(w0), f(0)) (the "
                                   "starting loss; a warm start's or the zero model's, "
                                   "whichever is larger) in 20 of the last 25 iterations "
                                   "(null: never)",
                                   check=_above_one, nullable=True),
        "oscillation_window": Param(INT, 50, "stop as diverged when this many iterations "
                                    "bring no new best loss and their median loss is above "
                                    "best + oscillation_margin * (reference - best) (0: never)",
                                    check=nonneg),
        "oscillation_margin": Param(FLOAT, 1.0, "the share of the progress made (reference "
                                    "loss - best loss) that run.oscillation_window's median "
                                    "must have lost (1: back above the reference loss)",
                                    check=positive),
        "checkpoint_every": Param(INT, None, "write /checkpoint into the result file every "
                                  "this many rounds (and at the end)", check=at_least(1),
                                  nullable=True),
        "latency_model": Param((dict,), None, "{per_round: s, per_byte: s}: adds modelled network "
                               "time to a modelled_time column (wall_time is unchanged)",
                               nullable=True),
        "progress": Param(STR, "auto", "distnewton run's progress bar: auto (when a person "
                          "watches the terminal, also through mpiexec; never in SLURM output "
                          "files, pipes or background jobs), always (`--progress`: the bar, "
                          "no per-iteration lines) or never (`--no-progress`)",
                          choices=("auto", "always", "never")),
        "require_converged": Param(BOOL, False, "distnewton run exits with code 5 (after "
                                   "writing the result) when the run ended max_rounds, "
                                   "max_iterations, stalled or diverged "
                                   "(`--require-converged`)"),
        "plugins": Param((list,), [], "modules to import on every rank before the run (their "
                         "@register_algorithm classes and worker tasks; `--plugin MODULE` "
                         "appends one); recorded here, so --resume imports them again",
                         nullable=True),
    },
    "output": {
        "path": Param(STR, None, "result file (default results/<config>-<time>.h5)",
                      nullable=True),
        "overwrite": Param(BOOL, False, "replace an existing result file"),
    },
}

"""YAML run configuration: schema, defaults, validation and ``--set`` overrides.

A config has the sections ``data``, ``model``, ``algorithm``, ``run`` and
``output``.  Every key is declared below with its type and default; the
algorithm's own keys are declared by the algorithm class (``Algorithm.params``)
and listed by ``distnewton list``.  Validation turns every problem into a
one-line :class:`~distnewton.errors.UserError` naming the key
(``algorithm.L: must be >= 1, got 0``), with the closest valid key suggested
for a misspelt one.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from . import checks
from .errors import PluginError, UserError
from .objectives import CLASSIFICATION_LOSSES
from .params import (  # noqa: F401
    BOOL,
    FLOAT,
    INT,
    STR,
    Param,
    at_least,
    between,
    check_range,
    in_open_closed,
    nonneg,
    number_error,
    positive,
    seed,
    with_preset,
)
from .validation import check_config as check_validation
from .sections import AlgorithmSection, Config, plain, section_class
from .yamlio import Unreadable, load_file, load_text

#: K of the sim backend when ``run.workers`` is not set (over MPI: one per worker rank)
SIM_WORKERS = 4


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
                      "((x.w - y)^2/2) or squared_hinge (the L2-loss SVM max(0, 1 - y x.w)^2, "
                      "LIBLINEAR -s 2 with C = 1/(lambda n)); each averaged over the rows "
                      "plus (lambda/2)||w||^2", choices=("logistic", "ridge", "squared_hinge")),
        "lambda": Param(FLOAT + STR, "1/n", "L2 weight: a number >= 0 or '1/n'"),
        "fit_intercept": Param(BOOL, False, "append a constant feature 1 (regularised too)"),
        "regularize_intercept": Param(BOOL, True, "with fit_intercept: false leaves the "
                                      "intercept out of the L2 penalty (scikit-learn's and "
                                      "Spark's convention; LIBLINEAR regularises it)"),
        "class_weight": Param(STR + (dict,), None, "logistic, squared_hinge: 'balanced' or "
                              "{label: weight} "
                              "(multiplies data.weights)", nullable=True),
        "multiclass": Param(STR, None, "logistic or squared_hinge with more than two classes: "
                            "'ovr' trains one binary problem per class (one-vs-rest) on the "
                            "same shards",
                            choices=("ovr",), nullable=True),
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
SECTIONS = tuple(SCHEMA) + ("algorithm",)

#: The typed section of each schema section (``cfg.run`` is a RunSection).
SECTION_CLASSES = {name: section_class(name, spec, __name__) for name, spec in SCHEMA.items()}
DataSection, ModelSection, RunSection, OutputSection = SECTION_CLASSES.values()


def suggest(key, valid):
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_value(where: str, p: Param, value):
    """Validate one value against its Param; returns the (possibly coerced) value."""
    if value is None:
        if p.nullable or p.default is None:
            return None
        raise UserError(f"{where}: must not be empty")
    if isinstance(value, str) and float in p.types:
        try:        # YAML 1.1 reads 1e-12 (no dot) as a string: accept it as a number
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) and bool not in p.types:
        raise UserError(f"{where}: expected {_typename(p.types)}, got {value!r}")
    if not isinstance(value, p.types):
        raise UserError(f"{where}: expected {_typename(p.types)}, got {value!r}")
    if float in p.types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    msg = number_error(p, value)
    if msg:
        raise UserError(f"{where}: {msg}")
    if p.choices is not None and value not in p.choices:
        raise UserError(f"{where}: must be one of {', '.join(map(str, p.choices))}, "
                        f"got {value!r}")
    msg = check_range(p, value)
    if msg:
        raise UserError(f"{where}: {msg}")
    return value


def _typename(types):
    names = {int: "an integer", float: "a number", str: "a string", bool: "true/false",
             list: "a list", dict: "a mapping"}
    return " or ".join(dict.fromkeys(names[t] for t in types if not (t is int and float in types)))


@dataclass(frozen=True)
class Override:
    """One key set from outside the config file: ``--set`` on the command line,
    ``set=`` of :func:`distnewton.solve`, or a CLI option (``--workers``, ``-o``).
    ``append``: add to a list key (``--set run.plugins+=MODULE``); ``origin``
    names it in error messages."""

    section: str
    key: str
    value: Any
    append: bool = False
    origin: str = ""


def parse_override(text: str) -> Override:
    """``--set section.key=value`` (the value parsed as YAML);
    ``section.key+=value`` appends to a list key."""
    origin = f"--set {text}"
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise UserError(f"{origin}: expected section.key=value")
    path, raw = text.split("=", 1)
    section, key = path.split(".", 1)
    try:
        value = load_text(raw, f"{origin}: value", lines=False) if raw != "" else None
    except Unreadable:
        value = raw            # characters YAML cannot read (a file name that is not
                               # UTF-8, a control character): only a string holds them
    append = key.endswith("+")
    return Override(section, key[:-1] if append else key, value, append, origin)


def override(path, value, origin=None, append=False) -> Override:
    """``"section.key"`` set to the Python ``value`` (the API's ``set=`` and the
    CLI's options); ``origin`` defaults to ``set section.key``."""
    section, dot, key = str(path).partition(".")
    if not dot or not section or not key:
        raise UserError(f"{origin or f'set {path!r}'}: expected 'section.key'")
    return Override(section, key, value, append, origin or f"set {path}")


def apply_overrides(raw: dict, overrides, source="config") -> dict:
    """``raw`` (plain dicts, changed in place) with every :class:`Override` applied."""
    for o in overrides:
        o = parse_override(o) if isinstance(o, str) else o
        if o.section not in SECTIONS:
            raise UserError(f"{o.origin}: unknown section '{o.section}'"
                            f"{suggest(o.section, SECTIONS)}")
        if raw.get(o.section) is None:
            raw[o.section] = {}
        if not isinstance(raw[o.section], dict):
            raise UserError(f"{source}: section '{o.section}' must be a mapping")
        value = o.value
        if o.append:
            old = raw[o.section].get(o.key) or []
            if not isinstance(old, list):
                raise UserError(f"{o.origin}: {o.section}.{o.key} is not a list")
            value = old + (value if isinstance(value, list) else [value])
        raw[o.section][o.key] = value
    return raw


def load_yaml(path: str) -> dict:
    """The config file's mapping (:func:`distnewton.yamlio.load_file`: a regular
    file, libyaml, no duplicate key, bounded size and aliases)."""
    raw = load_file(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a config must be a mapping of sections")
    return raw


def resolve(raw, overrides=(), algorithms=None, source="config") -> Config:
    """Apply overrides, check every key, fill defaults: the resolved, typed
    :class:`~distnewton.sections.Config`.

    ``raw``: the YAML's mapping (or a Config); ``overrides``: :class:`Override`
    objects or ``--set`` texts, applied in order.
    ``run.plugins`` are imported here (:func:`distnewton.algorithms.registry.load_plugins`),
    on every rank, before the algorithm is looked up and before any runtime
    builds its worker-task table.  ``algorithms`` maps algorithm names to
    classes with a ``params`` dict of :class:`Param` (default: the registry
    ``distnewton.algorithms.ALGORITHMS``); the algorithm section is validated
    against the chosen class.  A :class:`~distnewton.errors.PluginError` leaves
    with ``backend`` set to ``run.backend`` (see :mod:`distnewton.errors`).
    """
    cfg = apply_overrides(plain(raw), overrides, source)
    for section in cfg:
        if section not in SECTIONS:
            raise UserError(f"{source}: unknown section '{section}'{suggest(section, SECTIONS)}")
        if cfg[section] is not None and not isinstance(cfg[section], dict):
            raise UserError(f"{source}: section '{section}' must be a mapping")
    out = {section: _check_section(section, cfg.get(section) or {}, spec)
           for section, spec in SCHEMA.items()}
    out["run"]["plugins"] = _check_plugins(out["run"]["plugins"])
    try:
        from .algorithms.registry import load_plugins
        load_plugins(out["run"]["plugins"])
        if algorithms is None:
            from .algorithms import ALGORITHMS as algorithms
        out["algorithm"] = _check_algorithm(dict(cfg.get("algorithm") or {}), algorithms,
                                            out["run"]["plugins"])
    except PluginError as exc:
        exc.backend = out["run"]["backend"]
        raise
    _check_cross(out)
    checks.memory(out, algorithms[out["algorithm"]["name"]])
    checks.l1_term(out, algorithms[out["algorithm"]["name"]])
    return Config(**{name: SECTION_CLASSES[name].build(out[name]) for name in SCHEMA},
                  algorithm=AlgorithmSection(out["algorithm"]))


def _check_plugins(plugins):
    """run.plugins: module names, each once (in order; --plugin may repeat one)."""
    plugins = plugins or []
    for name in plugins:
        if not isinstance(name, str) or not name.strip():
            raise UserError(f"run.plugins: expected importable module names, got {name!r}")
    return list(dict.fromkeys(plugins))


def _check_algorithm(alg, algorithms, plugins):
    """The algorithm section against its class (a registry miss is a PluginError:
    ranks may see different entry points)."""
    name = alg.pop("name", None)
    if name is None:
        raise UserError(f"algorithm.name: missing (one of {', '.join(sorted(algorithms))})")
    if not isinstance(name, str):
        raise UserError(f"algorithm.name: expected a string (one of "
                        f"{', '.join(sorted(algorithms))}), got {name!r}")
    if name not in algorithms:
        hint = (f" (run.plugins {', '.join(plugins)} imported: a plugin module registers its "
                "class with @register_algorithm)" if plugins else "")
        raise PluginError(f"algorithm.name: unknown algorithm '{name}'"
                          f"{suggest(name, algorithms)}; valid: {', '.join(sorted(algorithms))}"
                          f"{hint}")
    cls = algorithms[name]
    alg = with_preset(alg, getattr(cls, "presets", {}))
    params = _check_section("algorithm", alg, cls.params)
    return {"name": name, **params}


def _check_section(section, given, spec):
    res = {}
    for key in given:
        if key not in spec:
            raise UserError(f"{section}.{key}: unknown key{suggest(key, spec)}")
    for key, p in spec.items():
        value = given[key] if key in given else p.default
        res[key] = check_value(f"{section}.{key}", p, value) if key in given else value
    return res


def _check_cross(cfg):
    lam = cfg["model"]["lambda"]
    if isinstance(lam, str):
        if lam.replace(" ", "") != "1/n":
            raise UserError(f"model.lambda: must be a number >= 0 or '1/n', got {lam!r}")
    elif lam < 0:
        raise UserError(f"model.lambda: must be >= 0, got {lam}")
    if not cfg["model"]["regularize_intercept"] and not cfg["model"]["fit_intercept"]:
        raise UserError("model.regularize_intercept: false needs model.fit_intercept: true "
                        "(there is no intercept to leave out of the penalty)")
    cw = cfg["model"]["class_weight"]
    if isinstance(cw, str) and cw != "balanced":
        raise UserError(f"model.class_weight: must be 'balanced' or a mapping {{label: weight}}, "
                        f"got {cw!r}")
    if cfg["data"]["shards"] and (cfg["data"]["weights"] or cw is not None):
        key = "data.weights" if cfg["data"]["weights"] else "model.class_weight"
        raise UserError(f"{key}: not supported with data.shards (yet): give data.train")
    if cfg["data"]["train"] is None and cfg["data"]["shards"] is None:
        raise UserError("data.train: missing (path of a LIBSVM file)")
    run = cfg["run"]
    if run["target_subopt"] is not None and run["f_star"] is None:
        raise UserError("run.target_subopt: needs run.f_star (the optimal value)")
    checks.cross(cfg, suggest)
    check_validation(cfg)
    check_multiclass(cfg)


def check_multiclass(cfg):
    """``model.multiclass: ovr``: the keys it cannot combine with (:mod:`distnewton.multiclass`)."""
    mc, dc = cfg["model"], cfg["data"]
    if mc.get("multiclass") is None:
        return
    bad = [("model.loss", mc["loss"] not in CLASSIFICATION_LOSSES,
            "ovr is for loss logistic or squared_hinge"),
           ("data.positive_labels", dc["positive_labels"] is not None,
            "ovr trains every class against the rest: leave it unset"),
           ("model.class_weight", mc["class_weight"] is not None,
            "not supported with model.multiclass: ovr (yet); use data.weights"),
           ("model.w0", mc["w0"] is not None,
            "warm starts of model.multiclass: ovr are not supported (yet)"),
           ("data.shards", dc["shards"] is not None,
            "model.multiclass: ovr needs data.train (pre-split shards keep mapped labels)"),
           ("run.checkpoint_every", cfg["run"]["checkpoint_every"],
            "model.multiclass: ovr runs are not checkpointed (yet)")]
    for key, wrong, why in bad:
        if wrong:
            raise UserError(f"{key}: {why}")

"""YAML run configuration: schema, defaults, validation and ``--set`` overrides.

A config has the sections ``data``, ``model``, ``algorithm``, ``run`` and
``output``.  Every key is declared in :mod:`distnewton.config_schema` with its
type and default (``SCHEMA``, re-exported here); the
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

from . import checks, standardize
from .config_schema import SCHEMA, SIM_WORKERS  # noqa: F401  (SIM_WORKERS re-exported)
from .errors import PluginError, UserError
from .objectives import CLASSIFICATION_LOSSES
from .params import Param, check_range, number_error, with_preset  # noqa: F401  (Param re-exported)
from .validation import check_config as check_validation
from .sections import AlgorithmSection, Config, plain, section_class
from .yamlio import Unreadable, load_file, load_text

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
        hint = (p.hints or {}).get(value) if isinstance(value, str) else None
        raise UserError(f"{where}: must be one of {', '.join(map(str, p.choices))}, "
                        f"got {value!r}" + (f": {hint}" if hint else ""))
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
    standardize.check(out)
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
    if mc["multiclass"] == "multinomial":
        return check_multinomial(cfg)
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


def check_multinomial(cfg):
    """``model.multiclass: multinomial``: the keys it cannot combine with
    (:mod:`distnewton.multinomial`); the algorithm is checked with the problem."""
    mc, dc = cfg["model"], cfg["data"]
    bad = [("model.loss", mc["loss"] != "logistic",
            f"model.multiclass: multinomial is the softmax of loss logistic, not {mc['loss']}"),
           ("data.positive_labels", dc["positive_labels"] is not None,
            "model.multiclass: multinomial keeps every class: leave it unset"),
           ("model.w0", mc["w0"] is not None,
            "warm starts of model.multiclass: multinomial are not supported (yet)"),
           ("data.shards", dc["shards"] is not None,
            "model.multiclass: multinomial needs data.train (pre-split shards keep mapped labels)"),
           ("run.checkpoint_every", cfg["run"]["checkpoint_every"],
            "model.multiclass: multinomial runs are not checkpointed (yet)"),
           ("model.standardize", bool(mc.get("standardize")),
            "not supported with model.multiclass: multinomial (yet)"),
           ("run.liblinear_eps", cfg["run"].get("liblinear_eps") is not None,
            "LIBLINEAR's stopping rule scales by min(#pos, #neg) of a binary problem, which "
            "model.multiclass: multinomial does not have (LIBLINEAR has no softmax): "
            "use run.grad_rtol")]
    for key, wrong, why in bad:
        if wrong:
            raise UserError(f"{key}: {why}")

"""The root attributes of a run's file: what ran, on what, where and how.

:func:`root_attributes` fills them a group at a time, so that what was filled
before a failure still reaches the fallback file; :func:`model_attributes`
says which entry of ``/model/w`` is the intercept.  Meanings:
:data:`~distnewton.io.schema.ROOT_ATTRIBUTES`.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import socket
import sys

import numpy as np
import yaml

from .. import __version__
from ..errors import reason
from .schema import SCHEMA_VERSION, clean_text, json_value


def now():
    """The local time, ISO 8601 to the second, with its UTC offset."""
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def dump(cfg: dict) -> str:
    """The resolved config as YAML text (the ``config`` attribute)."""
    return yaml.safe_dump(cfg.to_dict() if hasattr(cfg, "to_dict") else cfg, sort_keys=False)


def library_line(get_version) -> str:
    """The first non-empty line of ``get_version()`` (``MPI.Get_library_version``),
    cleaned: Open MPI's is one line ending in a NUL; "unknown" if it fails."""
    try:
        lines = [line.strip() for line in clean_text(get_version()).splitlines()]
    except Exception:                          # noqa: BLE001 - provenance only
        return "unknown"
    return next((line for line in lines if line), "unknown")


def provenance() -> dict:
    """Where and how the run ran; an item that cannot be found says why."""
    import scipy
    items = {"argv": lambda: " ".join(sys.argv), "hostname": socket.gethostname,
             "python": platform.python_version, "numpy": lambda: np.__version__,
             "scipy": lambda: scipy.__version__}
    out = {}
    for key, get in items.items():
        try:
            out[key] = get()
        except Exception as exc:               # noqa: BLE001 - never lose a run over it
            out[key] = f"unknown ({reason(exc)})"
    return out


def label_map_json(label_map) -> str:
    """The label map as JSON (numbers stay numbers; anything else as text)."""
    return json.dumps(label_map, default=json_value, sort_keys=True)


def root_attributes(attrs, cfg, setup, rt, status, message, started, mpi_library,
                    setup_bytes):
    """The root attributes, added to ``attrs`` a group at a time (what was filled
    before a failure still reaches the fallback file)."""
    p = setup.problem
    attrs.update({
        "schema_version": SCHEMA_VERSION, "distnewton_version": __version__,
        "algorithm": cfg["algorithm"]["name"], "loss": p.loss, "lambda": p.lam,
        "l1": float(getattr(p, "l1", 0.0)),
        "n_workers": rt.K, "backend": cfg["run"]["backend"], "dataset": setup.dataset,
        "master_shard": bool(len(getattr(rt, "local", ()))),
        "dataset_sha256": setup.sha256, "n_samples": p.n, "n_features": p.d,
        "seed": cfg["run"]["seed"], "partition_seed": cfg["data"]["seed"],
        "status": status, "message": message, "mpi_library": mpi_library,
        "started": started, "finished": now()})
    attrs["shard_sizes"] = np.asarray(p.sizes, dtype=np.int64)
    attrs.update({"config": dump(cfg), "label_map": repr(setup.label_map),
                  "setup_bytes": int(setup_bytes), "eval_rounds": rt.eval.rounds,
                  "eval_bytes": rt.eval.bytes_up + rt.eval.bytes_down})
    attrs["label_map_json"] = label_map_json(setup.label_map)
    attrs["dataset_cache"] = setup.cache
    if setup.timings:
        attrs["setup_seconds_json"] = json.dumps(setup.timings)
    attrs.update(provenance())
    return attrs


def model_attributes(cfg, d) -> dict:
    """``/model/w``'s attributes: where the intercept is (its last entry, or none)."""
    mc = cfg["model"]
    return {"intercept_index": d - 1 if mc["fit_intercept"] else -1,
            "regularized_intercept": bool(mc["fit_intercept"] and mc["regularize_intercept"])}

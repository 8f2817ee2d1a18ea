"""``--resume`` checks what it resumes (issue 28).

A checkpoint (:mod:`distnewton.io.checkpoint`) records what it depends on, as
attributes of ``/checkpoint`` (:func:`~distnewton.io.checkpoint.record`):

- ``dataset_sha256``, ``n_samples``, ``n_features``, ``label_map_json``: the data's
  fingerprint (the run's ``dataset_sha256``: the training file's sha256, or of the
  arrays), its shape and label map;
- ``algorithm``, ``algorithm_class`` (``module.qualname``) and ``state_layout``
  (JSON: every attribute of the algorithm object and its kind, as stored);
- ``workers_sha256`` (JSON: the sha256 of every worker image
  ``/checkpoint/workers/<k>``; with ``n_workers``, the images say whether K may
  change: :func:`~distnewton.io.checkpoint.workers_are_stateless`);
- ``distnewton_version``.

``--resume FILE`` then, on every rank and before any data is read
(:func:`resolve_resume`): reads the file's structure (counters of the right
types, the stored config as YAML, every worker image present, unchanged and
readable, every part of the algorithm state readable, RNG states valid), checks
that the state is the configured algorithm's (name, class, layout) and refuses
``--set`` overrides of what the state depends on (:data:`FROZEN`); then, on
rank 0 once the data is read and before the first round (:func:`check_data`):
the data's sha256, shape and label map, the model size, the worker count, and
for a plugin algorithm a fresh object's attributes against the layout
(:func:`probe_plugin`; the loop checks a built-in's before restoring it).
Under MPI both errors reach every rank (the first is found alike on all; the
second is broadcast by the session), so no rank hangs.  Every refusal is one
line ``FILE: checkpoint PART: what`` and exit code 2.

A checkpoint written before these attributes existed still resumes, with a
warning naming what cannot be verified; one written by another distnewton
version resumes when its state layout matches today's class (a warning says
so), and is refused otherwise.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ..errors import UserError
from .checkpoint import TYPE, class_name, layout, read_obj, stored_kind
from .fallback import is_fallback
from .read import open_h5

#: config keys a checkpointed state depends on: ``--set`` may not change them on
#: resume (the data file itself is checked by its sha256, so ``data.train``,
#: ``data.test`` and ``data.cache`` may point elsewhere, and ``data.fetch`` and
#: ``data.mirror`` say only how a registered set is fetched; ``run.*`` but
#: ``run.seed`` and ``output.*`` may change)
FROZEN = ("algorithm.*", "model.*", "data.*", "run.seed")
FREE = ("data.train", "data.test", "data.cache", "data.fetch", "data.mirror", "model.w0")

#: /checkpoint's counters and their kinds
COUNTERS = {"iteration": int, "comm_rounds": int, "bytes_up": int, "bytes_down": int,
            "n_workers": int, "wall_time": float, "g0": float, "f_zero": float}
#: counters a file may lack: the warm start answer keeps no g0; f_zero (the loss of
#: the zero model, the divergence guard's reference) is newer than some 0.3.0.dev0 files
OPTIONAL_COUNTERS = ("g0", "f_zero")


def text(value):
    return value.decode() if isinstance(value, bytes) else value


# -- the file's own structure: every rank, before the data -----------------------
def refuse(path, part, what):
    return UserError(f"{path}: checkpoint {part}: {what}")


def counters_of(path, ck) -> dict:
    out = {}
    for key, want in COUNTERS.items():
        if key not in ck.attrs:
            if key in OPTIONAL_COUNTERS:
                out[key] = math.nan
                continue
            raise refuse(path, f"/checkpoint attribute {key}", "missing")
        v = ck.attrs[key]
        v = v.item() if isinstance(v, np.generic) else v
        ok = (isinstance(v, (int, float)) and not isinstance(v, bool)
              and (want is float or (isinstance(v, int) and v >= 0)))
        if not ok or (key == "n_workers" and v < 1):
            raise refuse(path, f"/checkpoint attribute {key}",
                         f"expected {'a number' if want is float else 'an integer >= 0'}"
                         f", got {v!r}"[:200])
        out[key] = v
    return out


def worker_images(path, ck, n) -> list:
    """The worker images, checked: present, unchanged (sha256), readable."""
    import h5py
    sums = None
    if "workers_sha256" in ck.attrs:
        try:
            sums = json.loads(text(ck.attrs["workers_sha256"]))
            assert isinstance(sums, list) and all(isinstance(x, str) for x in sums)
        except Exception:                    # noqa: BLE001
            raise refuse(path, "/checkpoint attribute workers_sha256",
                         "not a JSON list of sha256 digests") from None
    images = []
    for k in range(n):
        part = f"/checkpoint/workers/{k}"
        if "workers" not in ck or str(k) not in ck["workers"]:
            raise refuse(path, part, f"missing (the checkpoint has {n} workers)")
        node = ck["workers"][str(k)]
        if not isinstance(node, h5py.Dataset) or node.dtype != np.uint8:
            raise refuse(path, part, "not a byte image")
        raw = bytes(node[()])
        if sums is not None and (k >= len(sums) or hashlib.sha256(raw).hexdigest() != sums[k]):
            raise refuse(path, part, "its sha256 differs from the one recorded "
                         "(the worker state was changed or damaged)")
        try:
            with h5py.File(io.BytesIO(raw), "r") as img:
                read_obj(img, "state")
                read_obj(img, "rng")
        except Exception as exc:             # noqa: BLE001 - damaged: one line
            raise refuse(path, part, f"unreadable worker state ({short(exc)})") from None
        images.append(raw)
    return images


def short(exc) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:160]


def held_state(path, ck, name):
    """/checkpoint/algorithm: the state of the algorithm ``name`` the config names."""
    import h5py
    part = "/checkpoint/algorithm"
    node = ck.get("algorithm") if "algorithm" in ck else None
    if not isinstance(node, h5py.Group) or text(node.attrs.get("name", "")) == "":
        raise refuse(path, part, "missing or not an algorithm's state")
    held = text(node.attrs["name"])
    if held != name or text(ck.attrs.get("algorithm", held)) != held:
        raise refuse(path, part, f"holds {held}'s state, but the stored config names "
                     f"{name} (algorithm.name)")
    return node


def algorithm_state(path, ck, name):
    """The stored state is of today's class for ``name`` (plugins imported), of
    the recorded layout, and readable; the layout (None: not recorded)."""
    from ..algorithms import ALGORITHMS
    part = "/checkpoint/algorithm"
    node = ck["algorithm"]
    cls = ALGORITHMS[name]
    if "algorithm_class" in ck.attrs and text(ck.attrs["algorithm_class"]) != class_name(cls):
        raise refuse(path, part, f"written by the class {text(ck.attrs['algorithm_class'])}, "
                     f"but {name} is now {class_name(cls)}: resume with the same plugin")
    present = {}
    for key in sorted(set(node.attrs) | set(node)):
        if key in (TYPE, "name"):
            continue
        try:
            present[key] = stored_kind(node, key)
            read_obj(node, key)
        except Exception as exc:             # noqa: BLE001 - damaged: one line
            raise refuse(path, f"{part}/{key}", f"unreadable ({short(exc)})") from None
    if "state_layout" not in ck.attrs:
        return None
    try:
        want = json.loads(text(ck.attrs["state_layout"]))
        assert isinstance(want, dict)
    except Exception:                        # noqa: BLE001
        raise refuse(path, "/checkpoint attribute state_layout", "not a JSON mapping") from None
    for key in sorted(set(want) | set(present)):
        if want.get(key) != present.get(key):
            raise refuse(path, f"{part}/{key}", f"recorded as {want.get(key, 'absent')}, "
                         f"found {present.get(key, 'absent')} (the state was changed)")
    return want


def check_layout(alg, resume):
    """A fresh algorithm object has no attribute the checkpoint lacks (a changed
    plugin class would leave it at its initial value); raised before restoring."""
    if resume.layout is None:
        return
    missing = sorted(set(layout(alg)) - set(resume.layout))
    if missing:
        raise refuse(resume.path, "/checkpoint/algorithm",
                     f"has no {missing[0]!r}, an attribute of today's {alg.name} "
                     "(the algorithm's class changed since the checkpoint)")


@dataclass
class Resume:
    """What ``--resume FILE`` continues from (read and checked by :func:`read_checkpoint`)."""

    path: str
    config: str          # the resolved config (YAML) of the stopped run
    history: dict
    counters: dict
    images: list         # worker states, one bytes object per worker
    depends: dict = field(default_factory=dict)   # dataset_sha256, n_samples, ...
    layout: dict | None = None      # the algorithm's state layout (None: not recorded)
    w_shape: tuple | None = None
    warnings: list = field(default_factory=list)  # what could not be verified


#: what the data check compares: (attribute, what it is)
DATA_KEYS = (("dataset_sha256", "sha256"), ("n_samples", "rows"), ("n_features", "features"),
             ("label_map_json", "label map"))


def read_checkpoint(path) -> Resume:
    """The checkpoint in ``path``, its structure checked (UserError naming the part)."""
    if is_fallback(path):
        raise UserError(f"{path}: a fallback file keeps no /checkpoint to resume from "
                        "(`distnewton recover` turns it into a result file)")
    return checked(path, _read)


def checked(path, read):
    """``read(path, f)`` on the open file; an unforeseen damage is one line too."""
    with open_h5(path, " (--resume)") as f:
        try:
            return read(path, f)
        except UserError:
            raise
        except Exception as exc:             # noqa: BLE001 - a damaged file: one line
            raise UserError(f"{path}: checkpoint damaged ({short(exc)})") from None


def _read(path, f):
    import h5py

    from ..yamlio import load_text
    if "checkpoint" not in f or "config" not in f.attrs or "history" not in f:
        status = text(f.attrs.get("status", "unknown"))
        multi = text(f.attrs.get("multiclass", ""))
        if multi in ("ovr", "multinomial"):
            raise UserError(f"{path}: --resume: model.multiclass: {multi} runs are not "
                            f"checkpointed (yet) (status {status}): start the run again")
        raise UserError(f"{path}: no /checkpoint to resume from (status {status}; "
                        "set run.checkpoint_every to keep one)")
    ck = f["checkpoint"]
    if not isinstance(ck, h5py.Group):
        raise refuse(path, "/checkpoint", "not a group")
    counters = counters_of(path, ck)
    try:
        raw = load_text(text(f.attrs["config"]), "config")
    except Exception as exc:                 # noqa: BLE001 - YAMLError, bad bytes
        raise refuse(path, "config (root attribute)", f"not YAML ({short(exc)})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("algorithm"), dict) \
            or not isinstance(raw["algorithm"].get("name"), str):
        raise refuse(path, "config (root attribute)", "not a config with algorithm.name")
    try:
        history = {k: f["history"][k][()] for k in f["history"]}
    except Exception as exc:                 # noqa: BLE001
        raise refuse(path, "/history", f"unreadable ({short(exc)})") from None
    it = history.get("iteration")
    if it is None or not len(it) or int(it[-1]) != counters["iteration"]:
        raise refuse(path, "/checkpoint attribute iteration",
                     f"{counters['iteration']} does not match /history (last iteration "
                     f"{'none' if it is None or not len(it) else int(it[-1])})")
    warnings = []
    out = Resume(str(path), text(f.attrs["config"]), history, counters,
                 worker_images(path, ck, counters["n_workers"]), warnings=warnings)
    node = held_state(path, ck, raw["algorithm"]["name"])
    out.w_shape = node["w"].shape if "w" in node and isinstance(node["w"], h5py.Dataset) \
        else None
    recorded = [k for k, _ in DATA_KEYS if k in ck.attrs]
    for key, _ in DATA_KEYS:                 # old checkpoints: the root's, same write
        value = ck.attrs[key] if key in ck.attrs else f.attrs.get(key)
        if value is not None:
            out.depends[key] = value.item() if isinstance(value, np.generic) else text(value)
    missing = [what for what, ok in (
        ("the data set", "dataset_sha256" in recorded or "dataset_sha256" in out.depends),
        ("the state layout", "state_layout" in ck.attrs),
        ("the worker images", "workers_sha256" in ck.attrs)) if not ok]
    if missing:
        warnings.append(f"{path}: checkpoint written before distnewton recorded what it "
                        f"depends on: {', '.join(missing)} cannot be verified")
    version = text(ck.attrs.get("distnewton_version", f.attrs.get("distnewton_version", "")))
    if version and version != __version__:
        warnings.append(f"{path}: checkpoint written by distnewton {version}, this is "
                        f"{__version__}: " + ("its state layout matches, resuming"
                                              if "state_layout" in ck.attrs else "resuming"))
    return out


# -- the config: every rank, before the data ----------------------------------------
def frozen(key) -> bool:
    if key in FREE:
        return False
    return any(key == f or (f.endswith(".*") and key.startswith(f[:-1])) for f in FROZEN)


def resolve_resume(path, overrides):
    """``distnewton run --resume PATH``: (the resolved config, the checked Resume).

    The stored config, with ``run.backend: auto`` and the file itself as output,
    then ``overrides``; one that changes a key of :data:`FROZEN` is refused.
    Every rank of a job finds the same error here, before MPI starts, and exits
    with it (:func:`distnewton.cli.fail`: rank 0 prints it)."""
    return _resolve(path, overrides)


def _resolve(path, overrides):
    from ..config import parse_override, resolve
    from ..yamlio import load_text
    resume = read_checkpoint(path)
    raw = load_text(resume.config, f"{path} (stored config)")
    raw.setdefault("run", {})
    if not isinstance(raw["run"], dict):
        raise refuse(path, "config (root attribute)", "section run is not a mapping")
    raw["run"]["backend"] = "auto"
    raw["output"] = {"path": str(path), "overwrite": True}
    for o in overrides:
        o = parse_override(o) if isinstance(o, str) else o
        key = f"{o.section}.{o.key}"
        section = raw.get(o.section)
        old = section.get(o.key) if isinstance(section, dict) else None
        if frozen(key) and (o.append or old != o.value):
            raise UserError(f"{o.origin}: the checkpoint in {path} depends on {key} "
                            f"({old!r}): it cannot change on resume (start a new run)")
    cfg = resolve(raw, overrides, source=str(path))     # imports run.plugins
    resume.layout = checked(path, lambda p, f: algorithm_state(
        p, f["checkpoint"], cfg["algorithm"]["name"]))
    return cfg, resume


# -- the data: rank 0, once it is read, before the first round --------------------------
def check_data(resume, setup, K, cfg):
    """The data and workers of this run are those the checkpoint was taken with."""
    from .checkpoint import workers_are_stateless
    from .provenance import label_map_json
    p = setup.problem
    now = {"dataset_sha256": setup.sha256, "n_samples": p.n, "n_features": p.d,
           "label_map_json": label_map_json(setup.label_map)}
    for key, what in DATA_KEYS:
        old = resume.depends.get(key)
        if old is not None and old != now[key]:
            shown = (lambda v: f"{v[:12]}...") if key == "dataset_sha256" else repr
            raise refuse(resume.path, f"attribute {key}",
                         f"taken on data with {what} {shown(old)}, but data.train "
                         f"({cfg['data']['train']}) now has {shown(now[key])}: the data "
                         "changed since the checkpoint; resume with the same data")
    if resume.w_shape is not None and tuple(resume.w_shape) != (p.d,):
        raise refuse(resume.path, "/checkpoint/algorithm/w",
                     f"shape {tuple(resume.w_shape)}, but the data has {p.d} features")
    probe_plugin(resume, setup.problem, K, cfg)
    n = int(resume.counters["n_workers"])
    if n != K and not workers_are_stateless(resume.images, cfg["run"]["seed"]):
        raise UserError(f"{resume.path}: {cfg['algorithm']['name']} keeps per-worker state: "
                        f"resume with {n} workers, not {K}")


def probe_plugin(resume, problem, K, cfg):
    """A plugin algorithm's class may change between stop and resume: build one
    on a stand-in runtime (only ``K``) and compare its attributes with the
    checkpoint's (built-in classes change with the version: see read_checkpoint).
    A constructor that needs more of the runtime is checked by the loop instead
    (:func:`check_layout`, before the first round)."""
    from types import SimpleNamespace

    from ..algorithms import ALGORITHMS
    name = cfg["algorithm"]["name"]
    if resume.layout is None or ALGORITHMS.origin(name).startswith("built-in"):
        return
    params = {k: v for k, v in cfg["algorithm"].items() if k != "name"}
    try:
        alg = ALGORITHMS[name](SimpleNamespace(K=K), problem, params, np.zeros(problem.d),
                               seed=cfg["run"]["seed"])
    except Exception:                        # noqa: BLE001 - the loop checks it then
        return
    check_layout(alg, resume)

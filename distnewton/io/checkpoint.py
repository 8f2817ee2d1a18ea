"""Checkpoint and resume: the full state of a run, in the run's own HDF5 file.

``/checkpoint`` holds everything needed to continue bit for bit:

- attributes: ``iteration``, ``wall_time``, ``g0`` (first gradient norm, for
  ``grad_rtol``), the round/byte counters (algorithm and evaluation), ``n_workers``;
- ``algorithm``: the master's algorithm object, attribute by attribute
  (arrays, scalars, lists/deques such as the L-BFGS memory, dicts, nested
  algorithms such as Adaptive LocalNewton's GIANT phase, numpy Generators).
  A plugin algorithm (:mod:`distnewton.plugins`) is saved the same way, by the
  types of its attributes; one of another type stops the write with a
  TypeError naming it (``algorithm.cache['x']``: keep such values out of the
  object, or rebuild them in ``step()``);
- ``workers/<k>``: worker k's ``ctx.state`` and RNG state, serialised on the
  worker into an in-memory HDF5 image and gathered as bytes (2 rounds, counted
  with the evaluation rounds, never charged to the algorithm).

Besides the counters, :func:`record` stores what the state depends on (the
data's sha256, shape and label map, the algorithm's class and state layout, the
worker images' sha256, the version): :mod:`distnewton.io.resume` reads and
checks a checkpoint before ``--resume`` continues it.

The history so far is the file's ``/history``.  Resuming with a different
number of workers is allowed only when no worker holds state (no ``ctx.state``
and an untouched RNG: newton, gd, giant, lbfgs, localnewton,
adaptive_localnewton); the partition then changes with K, so the iterates are
those of a run that changed K at that point.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
from types import SimpleNamespace

import numpy as np

from .. import __version__
from ..algorithms import ALGORITHMS, Algorithm
from ..runtime import worker_rng, worker_task

TYPE = "__type__"
SKIP = ("rt", "prob")


#: what :func:`write_obj` stores (the message for anything else)
STORABLE = ("None, bool, int, float, str, bytes, numpy arrays and Generators, lists, "
            "tuples, deques, dicts, SimpleNamespace, Algorithm objects")


# -- a small recursive HDF5 serialiser ---------------------------------------
def write_obj(group, key, value, where=None):
    """Store ``value`` under ``group[key]`` (dataset, attribute or subgroup).

    ``where``: the value's path for the error message (default ``key``).
    """
    where = key if where is None else where
    if value is None:
        group.attrs[key] = json.dumps({TYPE: "none"})
    elif isinstance(value, (bool, np.bool_)):
        group.attrs[key] = json.dumps({TYPE: "bool", "v": bool(value)})
    elif isinstance(value, (int, np.integer)):
        group.attrs[key] = json.dumps({TYPE: "int", "v": int(value)})
    elif isinstance(value, (float, np.floating)):      # JSON keeps repr: exact round trip
        group.attrs[key] = json.dumps({TYPE: "float", "v": float(value)})
    elif isinstance(value, (str, bytes)):
        group.attrs[key] = json.dumps({TYPE: type(value).__name__,
                                       "v": value.decode("latin-1") if isinstance(value, bytes) else value})
    elif isinstance(value, np.ndarray):
        group.create_dataset(key, data=value)
    elif isinstance(value, np.random.Generator):
        group.attrs[key] = json.dumps({TYPE: "rng", "v": value.bit_generator.state})
    elif isinstance(value, list) and value and all(type(v) is int for v in value):
        group.create_dataset(key, data=np.asarray(value, dtype=np.int64)).attrs[TYPE] = "intlist"
    elif isinstance(value, list) and value and all(type(v) is float for v in value):
        group.create_dataset(key, data=np.asarray(value)).attrs[TYPE] = "floatlist"
    elif isinstance(value, (list, tuple, collections.deque)):
        sub = group.create_group(key)
        sub.attrs[TYPE] = type(value).__name__
        if isinstance(value, collections.deque):
            sub.attrs["maxlen"] = -1 if value.maxlen is None else value.maxlen
        sub.attrs["len"] = len(value)
        for i, item in enumerate(value):
            write_obj(sub, str(i), item, f"{where}[{i}]")
    elif isinstance(value, (dict, SimpleNamespace)):
        sub = group.create_group(key)
        sub.attrs[TYPE] = "dict" if isinstance(value, dict) else "namespace"
        items = value.items() if isinstance(value, dict) else vars(value).items()
        sub.attrs["keys"] = json.dumps([str(k) for k, _ in items])
        for k, item in items:
            write_obj(sub, str(k), item, f"{where}[{k!r}]" if isinstance(value, dict)
                      else f"{where}.{k}")
    elif isinstance(value, Algorithm):
        sub = group.create_group(key)
        sub.attrs[TYPE] = "algorithm"
        sub.attrs["name"] = value.name
        for k, item in vars(value).items():
            if k not in SKIP:
                write_obj(sub, k, item, f"{where}.{k}")
    else:
        raise TypeError(f"cannot checkpoint {where}: a {type(value).__module__}."
                        f"{type(value).__qualname__}, and a checkpoint stores only {STORABLE}")


def read_obj(group, key, rt=None, prob=None):
    """Inverse of :func:`write_obj`."""
    if key in group.attrs:
        meta = json.loads(group.attrs[key])
        kind, v = meta[TYPE], meta.get("v")
        if kind == "rng":
            rng = np.random.default_rng()
            rng.bit_generator.state = v
            return rng
        return {"none": None, "bool": v, "int": v, "float": v, "str": v,
                "bytes": v.encode("latin-1") if kind == "bytes" else None}[kind]
    node = group[key]
    kind = node.attrs.get(TYPE, "array")
    if kind == "array":
        return node[()]
    if kind in ("intlist", "floatlist"):             # long lists of numbers: one dataset
        return node[()].tolist()
    if kind in ("list", "tuple", "deque"):
        items = [read_obj(node, str(i), rt, prob) for i in range(int(node.attrs["len"]))]
        if kind == "deque":
            maxlen = int(node.attrs["maxlen"])
            return collections.deque(items, maxlen=None if maxlen < 0 else maxlen)
        return items if kind == "list" else tuple(items)
    if kind in ("dict", "namespace"):
        d = {k: read_obj(node, k, rt, prob) for k in json.loads(node.attrs["keys"])}
        return d if kind == "dict" else SimpleNamespace(**d)
    if kind == "algorithm":
        cls = ALGORITHMS.stored(node.attrs["name"])
        obj = cls.__new__(cls)
        restore_attributes(obj, node, rt, prob)
        return obj
    raise ValueError(f"unknown checkpoint entry type {kind!r}")


def restore_attributes(obj, group, rt, prob):
    obj.rt, obj.prob = rt, prob
    names = set(group.attrs) | set(group)
    for k in names:
        if k != TYPE and k != "name":
            setattr(obj, k, read_obj(group, k, rt, prob))


# -- worker state travels as bytes ---------------------------------------------
def _image(write):
    import h5py
    f = h5py.File(io.BytesIO(), "w")
    write(f)
    f.flush()
    data = f.id.get_file_image()
    f.close()
    return data


def bytes_to_floats(raw: bytes):
    pad = (-len(raw)) % 8
    return np.frombuffer(raw + b"\0" * pad, dtype=np.float64), len(raw)


@worker_task("checkpoint.get")
def _get(ctx, size_only):
    if "image" not in ctx.state.get("_checkpoint", {}):
        raw = _image(lambda f: (write_obj(f, "state", {k: v for k, v in ctx.state.items()
                                                        if k != "_checkpoint"},
                                          f"worker {ctx.k} ctx.state"),
                                write_obj(f, "rng", ctx.rng)))
        ctx.state["_checkpoint"] = {"image": raw}
    floats, n = bytes_to_floats(ctx.state["_checkpoint"]["image"])
    if size_only[0]:
        return np.array([floats.size, n], dtype=np.float64)
    del ctx.state["_checkpoint"]
    return floats


@worker_task("checkpoint.set")
def _set(ctx, nbytes, floats):
    import h5py
    raw = floats.tobytes()[: int(nbytes[ctx.k])]
    with h5py.File(io.BytesIO(raw), "r") as f:
        ctx.state.clear()
        ctx.state.update(read_obj(f, "state"))
        ctx.rng = read_obj(f, "rng")
    return np.zeros(1)


def gather_workers(rt):
    """Every worker's state as bytes (2 rounds, counted as evaluation)."""
    with rt.evaluating():
        sizes = rt.round("checkpoint.get", [1.0], up=[2] * rt.K)
        parts = rt.round("checkpoint.get", [0.0], up=[int(s[0]) for s in sizes])
    return [p.tobytes()[: int(s[1])] for p, s in zip(parts, sizes)]


def scatter_workers(rt, images):
    with rt.evaluating():
        floats = [bytes_to_floats(raw)[0] for raw in images]
        rt.round("checkpoint.set", [float(len(r)) for r in images], scatter=floats, up=1)


def workers_are_stateless(images, seed):
    """True when no worker holds state: K may change on resume."""
    import h5py
    for k, raw in enumerate(images):
        with h5py.File(io.BytesIO(raw), "r") as f:
            if read_obj(f, "state") or \
                    read_obj(f, "rng").bit_generator.state != worker_rng(seed, k).bit_generator.state:
                return False
    return True


def class_name(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def kind(value) -> str:
    """The kind :func:`~distnewton.io.checkpoint.write_obj` stores ``value`` as."""
    for types, name in (((type(None),), "none"), ((bool, np.bool_), "bool"),
                        ((int, np.integer), "int"), ((float, np.floating), "float"),
                        ((str,), "str"), ((bytes,), "bytes"), ((np.ndarray,), "array"),
                        ((np.random.Generator,), "rng"), ((Algorithm,), "algorithm")):
        if isinstance(value, types):
            return name
    if isinstance(value, list) and value and all(type(v) is int for v in value):
        return "intlist"
    if isinstance(value, list) and value and all(type(v) is float for v in value):
        return "floatlist"
    return {"deque": "deque", "SimpleNamespace": "namespace"}.get(
        type(value).__name__, type(value).__name__)


def layout(alg) -> dict:
    """The algorithm object's attributes and their kinds."""
    return {k: kind(v) for k, v in sorted(vars(alg).items()) if k not in SKIP}


def stored_kind(group, key) -> str:
    """The kind of ``group[key]`` as written (the inverse of :func:`kind`)."""
    if key in group.attrs:
        return json.loads(group.attrs[key])[TYPE]
    k = group[key].attrs.get(TYPE, "array")
    return k.decode() if isinstance(k, bytes) else str(k)


def record(ck, f, alg, images):
    """Add what the checkpoint depends on to ``ck`` (/checkpoint of the file ``f``,
    whose root attributes are written)."""
    for key in ("dataset_sha256", "n_samples", "n_features", "label_map_json"):
        if key in f.attrs:
            ck.attrs[key] = f.attrs[key]
    ck.attrs["algorithm"] = alg.name
    ck.attrs["algorithm_class"] = class_name(type(alg))
    ck.attrs["state_layout"] = json.dumps(layout(alg))
    ck.attrs["workers_sha256"] = json.dumps([hashlib.sha256(r).hexdigest() for r in images])
    ck.attrs["distnewton_version"] = __version__


def write_checkpoint(f, alg, counters, images):
    """Write /checkpoint into the open result file ``f``."""
    ck = f.create_group("checkpoint")
    for key, value in counters.items():
        ck.attrs[key] = value
    write_obj(ck, "algorithm", alg)
    workers = ck.create_group("workers")
    for k, raw in enumerate(images):
        workers.create_dataset(str(k), data=np.frombuffer(raw, dtype=np.uint8))
    record(ck, f, alg, images)


def restore_algorithm(alg, path):
    import h5py
    with h5py.File(path, "r") as f:
        restore_attributes(alg, f["checkpoint"]["algorithm"], alg.rt, alg.prob)

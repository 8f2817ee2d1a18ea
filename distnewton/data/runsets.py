"""The registered data sets a run names (``data.train: a9a``, ``data.test: a9a.t``):
which ones are not downloaded yet, the one line that says how to get them all,
and fetching them before the run reads them (``data.fetch: auto``, ``run --fetch``).

The order in a run (issue 29):

1. :func:`check` (every rank, before MPI starts, from
   :func:`distnewton.inputs.check_run_inputs`): with ``data.fetch: never`` a
   missing set stops the run with one line naming the first key and the one
   ``distnewton data fetch ...`` that gets every missing set of the run; a path
   that does not exist but looks like a registered set (``../shared/data/a9a.bz2``)
   says which name was probably meant.  Every rank finds the same error alone.
2. :func:`fetch_for_run` (``data.fetch: auto``), where the data is read by one
   process: the sim process, or rank 0 of an MPI job after MPI_Init, the
   result file claimed, while the other ranks sleep; rank 0's status word
   then carries a failure to every rank (one line, exit 2, never a hang, and
   never two downloads racing for one file).  :func:`~distnewton.data.fetch.fetch`
   verifies the sha256 and leaves no partial file, as ``distnewton data fetch`` does.

A set that is already in the data folder is used as it is (no network).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError, echo, reason
from .registry import REGISTRY, cached_path, not_downloaded, suggest

#: the config keys that may name a registered data set
KEYS = ("train", "test")


def fetch_command(names, mirror=None):
    """``distnewton data fetch A B [--mirror M]``: one command for every name."""
    cmd = "distnewton data fetch " + " ".join(dict.fromkeys(names))
    return cmd + (f" --mirror {mirror}" if mirror else "")


def _keys(cfg):
    """(key, value) of the data keys that are read as files in this run."""
    dc = cfg["data"]
    for key in KEYS:
        if key == "train" and (dc["synth"] is not None or dc["shards"]):
            continue                           # generated, or read from the shards
        if dc[key] is not None:
            yield f"data.{key}", dc[key]


def named_sets(cfg):
    """[(key, name)] of the keys naming a registered set (an existing path wins)."""
    return [(key, value) for key, value in _keys(cfg)
            if value in REGISTRY and not os.path.exists(value)]


def missing_sets(cfg):
    """[(key, name, the cached path looked for)] of the named sets not downloaded."""
    out = []
    for key, name in named_sets(cfg):
        path = cached_path(name)
        if not path.exists():
            out.append((key, name, path))
    return out


def check(cfg):
    """Before MPI, on every rank: a near miss of a registered name, the
    missing sets (one line, unless ``data.fetch: auto`` fetches them) and the
    mirror they would come from."""
    dc = cfg["data"]
    near_miss(cfg)
    missing = missing_sets(cfg)
    if missing and dc["fetch"] == "never":
        key, name, path = missing[0]
        names = [n for _, n, _ in missing]
        raise UserError(not_downloaded(key, name, path, fetch_command(names, dc["mirror"]),
                                       ", or run with --fetch"))
    if missing:
        check_mirror(dc["mirror"])


def check_mirror(mirror, key="data.mirror"):
    """A mirror is a folder or a URL (http, https, ftp, file)."""
    from .fetch import _is_url
    if mirror is None or _is_url(mirror) or Path(mirror).is_dir():
        return
    raise UserError(f"{key}: {mirror}: not a folder or a URL")


def near_miss(cfg):
    """A data path that does not exist but is a registered set's file name, or
    close to a registered name: "no such file", and the name probably meant."""
    for key, value in _keys(cfg):
        if value in REGISTRY or os.path.exists(value):
            continue
        name = suggest(value)
        if name is not None:
            raise UserError(f"{key}: {value}: no such file; did you mean {key}: {name} ? "
                            f"(a registered data set, fetched by `{fetch_command([name])}` "
                            "or by a run with --fetch)")


def fetch_missing(cfg, say=echo):
    """Fetch every missing set of the run into the data folder, verified;
    ``say`` one line per set.  A failure is a UserError naming the key."""
    from .fetch import fetch
    mirror = cfg["data"]["mirror"]
    for key, name, _ in missing_sets(cfg):
        try:
            got = fetch(name, mirror=mirror)
        except UserError as exc:
            raise UserError(f"{key}: {exc}") from None
        except OSError as exc:
            raise UserError(f"{key}: fetching {name} failed: {reason(exc)}") from None
        how = "sha256 verified" if got.verified else "NOT verified: no registered sha256"
        say(f"distnewton: {key}: fetched {name} from {got.source} -> {got.path} ({how})")


def fetch_for_run(cfg, say=echo):
    """``data.fetch: auto``: fetch the run's missing sets before anything reads them.

    Called where the data is read by one process: the sim process, or rank 0
    of an MPI job while the workers wait (:func:`distnewton.ingest.prepare`,
    after the result file is claimed: a run that cannot write its result
    downloads nothing).  Under MPI a missing set keeps the job off the
    parallel read (:func:`distnewton.ingest_parallel.applies` sees no file),
    so exactly one process downloads, and a failure reaches every rank
    through rank 0's status word: one line, exit 2, no hang."""
    if cfg["data"]["fetch"] == "auto":
        fetch_missing(cfg, say)

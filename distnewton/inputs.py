"""Inputs must be regular files (issue 28): a FIFO, a device (``/dev/zero``),
a directory or a socket given as a config, data, weights, warm start or result
file would block a read for ever or never end one (under MPI the whole job).

:func:`require_regular` is called where such a path is first opened or
resolved; :func:`check_run_inputs` checks a run's inputs at once, on every
rank before MPI starts, so every rank stops with the same one line (exit 2).
A symlink to a regular file is a regular file; a missing path is left to the
caller's own message.
"""

from __future__ import annotations

import os
import stat

from .errors import UserError

KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
         (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
         (stat.S_ISSOCK, "a socket"))


def require_regular(path, key=None):
    """UserError ``[KEY: ]PATH: not a regular file (a named pipe)`` unless ``path``
    is a regular file (or a symlink to one) or does not exist."""
    if path is None:
        return
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return                            # missing or unreadable: the opener says so
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in KINDS if test(mode)), "not a file")
    raise UserError(f"{key + ': ' if key else ''}{path}: not a regular file ({kind})")


def check_run_inputs(cfg):
    """Every input file of a resolved run config: data.train, data.test (a
    registered name resolved; one that is not downloaded is an error unless
    data.fetch: auto fetches it: :func:`distnewton.data.runsets.check`),
    data.validation's file, data.weights, model.w0 and the files of data.shards."""
    from .data import runsets
    from .data.registry import cached_path
    dc = cfg["data"]
    runsets.check(cfg)
    named = dict(runsets.named_sets(cfg))
    for key in ("train", "test"):
        if f"data.{key}" in named:
            require_regular(cached_path(named[f"data.{key}"]), f"data.{key}")
        elif key == "test" or (dc["synth"] is None and not dc["shards"]):
            require_regular(dc[key], f"data.{key}")
    if isinstance(dc.get("validation"), str):          # a file, not a held-out fraction
        require_regular(dc["validation"], "data.validation")
    require_regular(dc["weights"], "data.weights")
    require_regular(cfg["model"]["w0"], "model.w0")
    if dc["shards"] and os.path.isdir(dc["shards"]):
        for entry in sorted(os.listdir(dc["shards"])):
            if entry == "manifest.json" or entry.startswith("part-"):
                require_regular(os.path.join(dc["shards"], entry), "data.shards")

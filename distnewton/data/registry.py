"""The registry of LIBSVM data sets (``registry.tsv`` beside this module).

Each entry names one file: its registry name (``a9a``, ``a9a.t``), the file
name under which it is cached and looked up in a mirror (always the
bz2-compressed ``NAME.bz2``, as in ``../shared/data/``), the official URL,
the size and the sha256 of the *decompressed* file (``None`` when not known:
:mod:`~distnewton.data.fetch` then warns that it cannot verify), and other
names under which a mirror may hold it (``mirror_names``: ``../shared/data``
has phishing only as ``phishing.crlf.bz2``).

Where files live: ``data_dir()``, i.e. ``$DISTNEWTON_DATA`` if set, else
``$DISTNEWTON_CACHE/data``, else ``$XDG_CACHE_HOME/distnewton/data``, else
``~/.cache/distnewton/data``.  A config may name a registered data set instead
of a path (``data.train: a9a``): :func:`resolve_path` maps it to the cached
file, or explains how to fetch it.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from distnewton.errors import UserError

REGISTRY_FILE = Path(__file__).with_name("registry.tsv")


@dataclass(frozen=True)
class Entry:
    name: str
    file: str
    url: str
    n_samples: int
    n_features: int
    bytes: int | None
    sha256: str | None
    test: str | None
    notes: str
    #: other file names a mirror may hold the set under (after ``file`` and the URL's)
    mirror_names: tuple = ()


def cache_root() -> Path:
    """distnewton's cache folder (data sets, the f* cache)."""
    if os.environ.get("DISTNEWTON_CACHE"):
        return Path(os.environ["DISTNEWTON_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "distnewton"


def data_dir() -> Path:
    """Where ``distnewton data fetch`` stores files by default."""
    if os.environ.get("DISTNEWTON_DATA"):
        return Path(os.environ["DISTNEWTON_DATA"]).expanduser()
    return cache_root() / "data"


def _opt(text, conv=str):
    return None if text in ("", "-") else conv(text)


def _names(text):
    """A comma-separated column (``-`` or empty: none) as a tuple."""
    return tuple(n.strip() for n in (_opt(text) or "").split(",") if n.strip())


def load_registry(path=REGISTRY_FILE) -> dict[str, Entry]:
    entries = {}
    with open(path, encoding="utf-8") as fh:
        rows = [line.rstrip("\n").split("\t") for line in fh
                if line.strip() and not line.startswith("#")]
    header, body = rows[0], rows[1:]
    for row in body:
        r = dict(zip(header, row))
        entries[r["name"]] = Entry(
            name=r["name"], file=r["file"], url=r["url"], n_samples=int(r["n_samples"]),
            n_features=int(r["n_features"]), bytes=_opt(r["bytes"], int),
            sha256=_opt(r["sha256"]), test=_opt(r["test"]), notes=r.get("notes", ""),
            mirror_names=_names(r.get("mirror_names", "-")))
    return entries


REGISTRY = load_registry()


def lookup(name) -> Entry:
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, list(REGISTRY), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"{name}: not a registered data set{hint}; known: "
                        + ", ".join(REGISTRY))
    return REGISTRY[name]


def cached_path(name, folder=None) -> Path:
    return Path(folder or data_dir()) / lookup(name).file


def resolve_path(value, key="data.train"):
    """A config's data path: an existing file as is; a registry name -> cached file.

    A registered name that is not fetched yet is a UserError saying what to
    run.  Anything else is returned unchanged (the reader reports a missing file).
    """
    if value is None or os.path.exists(value) or value not in REGISTRY:
        return value
    path = cached_path(value)
    if not path.exists():
        raise UserError(not_downloaded(key, value, path, f"distnewton data fetch {value}",
                                       " (or set DISTNEWTON_DATA to the folder that holds it)"))
    return str(path)


def not_downloaded(key, name, path, command, then=""):
    """The one line for registered sets that are not downloaded: the first key,
    where it looked, and the one ``command`` that fetches them (a run names
    every missing set in it, so one fetch is enough)."""
    return (f"{key}: '{name}' is a registered data set that is not downloaded "
            f"(looked for {path}): run `{command}`{then}")


def suggest(value):
    """The registered name a missing path most likely meant, or None: the set a
    file of that name is (``../shared/data/a9a.bz2`` -> ``a9a``, also under a
    mirror's other name: ``phishing.crlf.bz2`` -> ``phishing``), else a close name."""
    base = os.path.basename(str(value))
    for e in REGISTRY.values():
        if base in (e.file, *e.mirror_names):
            return e.name
    stem = re.sub(r"\.(bz2|gz|xz)$", "", base)
    if stem in REGISTRY:
        return stem
    close = difflib.get_close_matches(stem, list(REGISTRY), n=1, cutoff=0.75)
    return close[0] if close else None


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

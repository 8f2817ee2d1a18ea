"""A data file in any format (:mod:`.formats`) as the MPI ranks read it
(:mod:`distnewton.shares`): what its cache entry is keyed by, a reader's share of a
file whose rows can be read by range (:data:`~.tables.RANGED`: NumPy ``.npy``,
Parquet row groups, HDF5 CSR row ranges), the layout of an uncompressed CSV/TSV
file, whose byte ranges the ranks parse as they parse LIBSVM text
(:mod:`.csv_ranges`), and the formats read whole by rank 0 into a cache entry
(``.npz``, compressed CSV/TSV) whose row ranges every rank then reads.
"""

from __future__ import annotations

import functools

import numpy as np

from distnewton.errors import UserError

from . import cache, csv_ranges, formats
from .tables import RANGED, read_share

__all__ = ["RANGED", "converted", "block_parser", "parse_key", "ranged_text", "read_ranges", "table_layout"]


def parse_key(cfg, fmt):
    """What a cache entry of this file is keyed by besides its path: LIBSVM's
    ``zero_based``, or the format and label column (:func:`.data.formats.options`)."""
    dc = cfg["data"]
    opts = formats.options(fmt, dc.get("label_column"))
    return dc["zero_based"] if opts is None else opts


def ranged_text(path, fmt) -> bool:
    """An uncompressed CSV/TSV file: its byte ranges are parsed by the ranks (a
    compressed one is read whole by rank 0 into the cache, :func:`converted`)."""
    return fmt in csv_ranges.TABLES and not str(path).lower().endswith(formats.PACKED)


def table_layout(cfg, path, fmt):
    """Rank 0: the :class:`~.csv_ranges.Layout` of a :func:`ranged_text` file (its
    header and label column, read once), None for any other file."""
    if not ranged_text(path, fmt):
        return None
    dc = cfg["data"]
    return csv_ranges.layout(path, fmt, dc.get("label_column"), dc.get("n_features"))


def block_parser(lay):
    """The block parser of a :func:`table_layout` file for
    :func:`distnewton.shares.parse_share`."""
    return functools.partial(csv_ranges.parse_block, lay)


def read_ranges(path, fmt, me, R, cfg, sink=None):
    """This reader's rows of a :data:`~.data.tables.RANGED` file, as one parsed part
    (or ``sink``'s): ``(parts, rows, None, width)``, ``width`` the file's column count."""
    dc = cfg["data"]
    X, y = read_share(path, fmt, me, R, dc["n_features"], dc["label_column"])
    part = (X.data, X.indices, X.indptr.astype(np.int64), y)
    if sink is not None:
        sink(part)
    return ([] if sink is not None else [part]), len(y), None, X.shape[1]


def converted(cfg, path, fmt):
    """Rank 0: a file in another format than LIBSVM text (:mod:`distnewton.data.formats`)
    is read once by its reader into a cache entry, whose row ranges every rank then
    reads as it reads a parsed text file's: ``("cache", folder, meta)``."""
    dc = cfg["data"]
    nf, label_column = dc["n_features"], dc["label_column"]
    cache.read_text(path, nf, False, dc["cache"], fmt, label_column)
    root = cache.root_for(dc["cache"], path)
    entry = None if root is None else cache.lookup(root, path, formats.options(
        fmt, label_column), nf)
    if entry is None:
        raise UserError(f"data.cache: the {fmt} file {path} is read under mpiexec through a "
                        "cache entry that could not be written; give a writable data.cache, "
                        "or data.cache: off (rank 0 reads the file and sends the shards)")
    return ("cache", str(entry.folder), entry.meta)

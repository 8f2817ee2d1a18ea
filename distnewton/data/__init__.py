"""Data layer: LIBSVM files, label mapping, row partitions, synthetic problems."""

from distnewton.data.libsvm import (
    Dataset,
    dataset_info,
    map_labels,
    read_libsvm,
    write_libsvm,
)
from distnewton.data.partition import SCHEMES, partition
from distnewton.data.synth import make_synthetic

__all__ = [
    "Dataset",
    "SCHEMES",
    "dataset_info",
    "make_synthetic",
    "map_labels",
    "partition",
    "read_libsvm",
    "write_libsvm",
]

"""distnewton: communication-efficient distributed second-order optimization.

Rank 0 is the master, ranks 1..K are workers holding one shard each.  See the
README for the command line, the YAML config and the HDF5 result schema.
"""

__version__ = "0.3.0.dev0"

#: Version of the HDF5 result layout (root attribute ``schema_version``).
SCHEMA_VERSION = 1

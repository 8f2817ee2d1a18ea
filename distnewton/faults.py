"""Fault injection for the tests only.

``DISTNEWTON_TEST_FAULT=RANK:POINT`` makes rank RANK raise a RuntimeError at
POINT, one of ``load`` (reading/receiving data), ``round`` (the first round
of the algorithm) or ``write`` (writing the result).  Never set it otherwise.
"""

import os

POINTS = ("load", "round", "write")


def inject(point, rank):
    spec = os.environ.get("DISTNEWTON_TEST_FAULT")
    if not spec:
        return
    want_rank, _, want_point = spec.partition(":")
    if want_point == point and int(want_rank) == rank:
        raise RuntimeError(f"injected fault at {point} (DISTNEWTON_TEST_FAULT)")

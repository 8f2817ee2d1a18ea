"""The Arrow block parser against Python's own readers.

References: Python's ``float`` (the number grammar the scanner and the docs
promise) and the line scanner ``libsvm._scan_block``, the authority on what a
block means.  The Arrow parser must give exactly the scanner's arrays or
decline; it must never accept what the scanner rejects.
"""

from __future__ import annotations

import numpy as np
import pytest

from distnewton.data import libsvm_arrow
from distnewton.data.libsvm import _scan_block, read_libsvm
from distnewton.errors import UserError

pytestmark = pytest.mark.skipif(not libsvm_arrow.available(), reason="pyarrow not installed")


def scanner(block, zero_based=False, n_features=None):
    try:
        return _scan_block(block, "f", 0, zero_based, n_features)
    except UserError:
        return None


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b)) and all(
        x.dtype == y.dtype for x, y in zip(a, b))


def random_number(rng):
    """Text over the parser's alphabet: mostly numbers, some near misses."""
    kind = rng.integers(6)
    if kind == 0:                                     # repr of a random double
        return repr(float(rng.standard_normal() * 10.0 ** rng.integers(-300, 300)))
    if kind == 1:                                     # long mantissas: rounding matters
        digits = "".join(rng.choice(list("0123456789"), rng.integers(1, 40)))
        return f"{digits[:1]}.{digits[1:]}e{rng.integers(-330, 310)}"
    if kind == 2:                                     # near the subnormal and overflow edges
        return rng.choice(["4.9e-324", "2.4703282292062327e-324", "2.4703282292062328e-324",
                           "1.7976931348623157e308", "1.7976931348623158e308",
                           "1.797693134862315807e308", "2.2250738585072011e-308",
                           "0.000000000000000000000000001", "123456789012345678901234567890"])
    if kind == 3:                                     # odd but legal forms
        return rng.choice(["5.", ".5", "+.5", "-0", "+0.0e-0", "1E5", "00012", "-1.e-3"])
    if kind == 4:                                     # junk over the same alphabet
        return "".join(rng.choice(list("0123456789+-.eE"), rng.integers(1, 6)))
    return str(int(rng.integers(-10**6, 10**6)))


def test_values_equal_pythons_float_or_the_block_is_declined():
    rng = np.random.default_rng(0)
    agreed = 0
    for _ in range(300):
        toks = [random_number(rng) for _ in range(20)]
        block = "".join(f"1 {j + 1}:{t}\n" for j, t in enumerate(toks)).encode()
        got = libsvm_arrow.parse_block(block, False, None)
        ref = scanner(block)
        if got is None:
            continue
        assert ref is not None, block               # never accept what the scanner refuses
        assert same(got, ref), block
        agreed += 1
    assert agreed > 40                     # a block with one junk token is declined whole


def test_every_number_kind_alone_agrees_with_float():
    rng = np.random.default_rng(1)
    accepted = 0
    for _ in range(3000):
        t = random_number(rng)
        got = libsvm_arrow.parse_block(f"1 1:{t}\n".encode(), False, None)
        try:
            v = float(t)
        except ValueError:
            v = None
        if got is None:
            continue
        assert v is not None and np.isfinite(v), t
        accepted += 1
        if v != 0.0:                                # explicit zeros are kept here, dropped later
            assert got[0][0] == v and np.signbit(got[0][0]) == np.signbit(v), t
    assert accepted > 1500


@pytest.mark.parametrize("block", [
    b"1 1:2 3:4\n-1 2:0.5\n", b"1 1:2\n\n  \n-1\n", b"1 1:2 # c\r\n-1 3:1e5\r\n",
    b"# only a comment\n1 1:1\n", b"1 1:2", b"2 01:2 10:1e-5\n", b"1\n1\n-1 4:1\n",
])
def test_plain_blocks_are_parsed_as_the_scanner_parses_them(block):
    got = libsvm_arrow.parse_block(block, False, None)
    assert got is not None and same(got, scanner(block))


@pytest.mark.parametrize("block", [
    b"1 2:1 1:3\n", b"1 1:2:3\n", b"1:2 3:4\n", b"1 1:nan\n", b"1 1:1e400\n", b"1 0:1\n",
    b"1 +1:2\n", b"1 1:2 1:3\n", b"1 qid:3 1:2\n", b"1 1:1_0\n", b"1 1:\n", b"1 :1\n",
    b"1 1:e5\n", b"1 -1:5\n", b"1 12345678901:1\n", b"1 1:2 x\n", "1 1:\u00e9\n".encode(),
])
def test_anything_else_is_declined(block):
    assert libsvm_arrow.parse_block(block, False, None) is None


def test_zero_based_and_n_features_limits():
    assert libsvm_arrow.parse_block(b"1 0:1 4:2\n", True, 5) is not None
    assert libsvm_arrow.parse_block(b"1 0:1 5:2\n", True, 5) is None
    assert libsvm_arrow.parse_block(b"1 1:1 5:2\n", False, 5) is not None
    assert libsvm_arrow.parse_block(b"1 1:1 6:2\n", False, 5) is None


def test_read_libsvm_with_and_without_arrow_gives_the_same_matrix(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    lines = []
    for i in range(3000):
        cols = np.sort(rng.choice(50, rng.integers(0, 8), replace=False)) + 1
        feats = " ".join(f"{c}:{rng.standard_normal()!r}" for c in cols)
        lines.append(f"{rng.choice([-1, 1])} {feats}" + (" # note" if i % 97 == 0 else ""))
    path = tmp_path / "r.svm"
    path.write_text("\n".join(lines) + "\n")
    import distnewton.data.libsvm as L
    a = read_libsvm(path)
    monkeypatch.setattr(L, "ARROW", False)
    b = read_libsvm(path)
    assert (a.X != b.X).nnz == 0 and np.array_equal(a.y, b.y) and a.X.shape == b.X.shape

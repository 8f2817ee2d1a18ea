"""Vectorised LIBSVM block parser (numpy only): the fast path of :mod:`.libsvm`.

:func:`parse_block` reads a block of whole lines in a few passes over its
bytes and returns what the line scanner ``libsvm._scan_block`` would return,
or None whenever the block holds anything it does not handle itself (then
the scanner, the authority on errors, reads the block).  It handles:
``#`` comments, ``qid:N`` right after the label, any ASCII whitespace, CRLF,
explicit zeros, and numbers made of ``[+-]digits[.digits][(e|E)[+-]digits]``.
It declines (None): any other byte (letters, ``_``, non-ASCII, so also NaN and
infinities), a malformed token, an index that is not plain digits, 0 in a
1-based file, an index above ``n_features`` or ``MAX_INDEX``, indices not
strictly increasing within a row, a number that overflows.

Numbers are exact: a decimal with at most 15 significant digits and a
power-of-ten exponent of at most 22 in size is ``m * 10**e`` or ``m / 10**-e``
with both operands exact doubles, a single correctly rounded IEEE operation,
so it equals Python's ``float`` (Clinger's fast path); any other number is
converted by ``float`` itself.
"""

from __future__ import annotations

import re

import numpy as np

MAX_INDEX = 2**31 - 1            # largest feature index accepted
_LONG = 40                       # fields longer than this go to float()
_P10 = 10.0 ** np.arange(23)     # exact doubles
_COMMENT = re.compile(rb"#[^\n]*")
_QID = re.compile(rb"(?m)^([ \t\r\v\f]*[^ \t\r\v\f\n]+[ \t\r\v\f]+)qid:[+-]?[0-9]+"
                  rb"(?=[ \t\r\v\f\n]|\Z)")

_SEP = np.zeros(256, bool)
_SEP[list(b" \t\n\r\v\f")] = True
_OK = _SEP.copy()
_OK[list(b"0123456789+-.eE:")] = True

# states of the number reader
_START, _SIGN, _INT, _DOT, _FRAC, _E, _ESIGN, _EXP, _BAD = range(9)


def parse_block(block: bytes, zero_based: bool, n_features):
    """``(data, indices, indptr, y)`` of ``block`` (0-based int64 indices), or None."""
    text = block
    if b"#" in text:
        text = _COMMENT.sub(b"", text)
    if b"q" in text:
        text = _QID.sub(rb"\1", text)     # leftover 'q' bytes fail the byte check
    u = np.frombuffer(text, np.uint8)
    if not _OK[u].all():
        return None
    tok = ~_SEP[u]
    edge = np.diff(tok.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
    is_label = np.zeros(len(starts) + 1, bool)
    is_label[0] = True                   # first token, and the first after each newline
    is_label[np.searchsorted(starts, np.flatnonzero(u == 10))] = True
    is_label = is_label[:-1]
    lab, feat = np.flatnonzero(is_label), np.flatnonzero(~is_label)
    colon = np.flatnonzero(u == 58)
    # as many colons as features, the j-th strictly inside the j-th feature token:
    # then no label has one and no token two, and no token is ":v" or "i:"
    if len(colon) != len(feat) or ((colon <= starts[feat]) | (colon >= ends[feat] - 1)).any():
        return None
    idx, plain = _digits(u, starts[feat], colon - starts[feat], 10)
    if not plain.all():
        return None
    nums = _parse_floats(text, u, np.concatenate([starts[lab], colon + 1]),
                         np.concatenate([ends[lab] - starts[lab], ends[feat] - colon - 1]))
    if nums is None:
        return None
    y, data = nums[:len(lab)], nums[len(lab):]
    same_row = feat[1:] - 1 == feat[:-1]
    if (same_row & (idx[1:] <= idx[:-1])).any():
        return None                      # unsorted or repeated in a row: the scanner decides
    if len(idx):
        top = idx.max()
        if (not zero_based and idx.min() == 0) or top > MAX_INDEX or (
                n_features is not None and top - (0 if zero_based else 1) >= n_features):
            return None
    indptr = np.zeros(len(lab) + 1, np.int64)
    np.cumsum(np.diff(np.append(lab, len(starts))) - 1, out=indptr[1:])
    return data, idx - (0 if zero_based else 1), indptr, y


def _by_length(lengths, cap):
    """Order fields longest first; ``active[k]`` = fields longer than k."""
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo == hi and hi <= cap:          # one length (a9a's values): no sort
        return slice(None), [len(lengths)] * hi
    short = np.minimum(lengths, cap + 1).astype(np.uint8)
    order = np.argsort(short, kind="stable")[::-1]
    counts = np.bincount(short, minlength=cap + 2)
    active = len(lengths) - np.cumsum(counts)[:cap]
    return order, active


def _digits(u, s, n, cap):
    """Fields as int64, and whether each is 1 to ``cap`` (<= 15) plain digits."""
    m = len(s)
    val, ok = np.zeros(m, np.int64), (n >= 1) & (n <= cap)
    if not m:
        return val, ok
    order, active = _by_length(n, cap)
    ss = s[order]
    acc, good = np.zeros(m, np.int64), np.ones(m, bool)
    for k, c in enumerate(active):
        if not c:
            break
        d = u[ss[:c] + k].astype(np.int64) - 48
        good[:c] &= (d >= 0) & (d <= 9)
        acc[:c] = acc[:c] * 10 + d          # < 10**17 even for non-digits: no overflow
    val[order] = acc
    ok[order] &= good
    return val, ok


def _parse_floats(text, u, s, n):
    """Fields as float64 exactly as Python's float reads them; None when one is
    not a number or not finite (the byte check has left only ``[0-9+-.eE]``).
    Plain digit strings (a9a's values) skip the general reader."""
    ival, plain = _digits(u, s, n, 15)
    out = ival.astype(np.float64)           # exact below 10**15
    rest = np.flatnonzero(~plain)
    if len(rest):
        val = _decimal(text, u, s[rest], n[rest])
        if val is None:
            return None
        out[rest] = val
    return out


def _decimal(text, u, s, n):
    """The general reader: sign, digits, point, exponent (see the module docstring)."""
    m = len(s)
    if not m:
        return np.zeros(0)
    order, active = _by_length(n, _LONG)
    ss = s[order]
    st = np.zeros(m, np.int8)
    neg, eneg = np.zeros(m, bool), np.zeros(m, bool)
    mant, sig, frac, nd, ev = (np.zeros(m, np.int64) for _ in range(5))
    for k, c in enumerate(active):
        if not c:
            break
        ch, S = u[ss[:c] + k], st[:c]
        d = ch.astype(np.int64) - 48
        isd = (d >= 0) & (d <= 9)
        m_int, m_frac = isd & (S <= _INT), isd & ((S == _DOT) | (S == _FRAC))
        m_exp = isd & (S >= _E) & (S <= _EXP)
        md = m_int | m_frac
        sig[:c] += md & ((d != 0) | (sig[:c] > 0))
        keep = md & (sig[:c] <= 18)                      # later digits: float() anyway
        mant[:c] = np.where(keep, mant[:c] * 10 + d, mant[:c])
        frac[:c] += m_frac & keep
        nd[:c] += md
        ev[:c] = np.where(m_exp, np.minimum(ev[:c] * 10 + d, 10**6), ev[:c])
        is_sign = (ch == 43) | (ch == 45)
        to_sign, to_esign = is_sign & (S == _START), is_sign & (S == _E)
        neg[:c] |= to_sign & (ch == 45)
        eneg[:c] |= to_esign & (ch == 45)
        to_dot = (ch == 46) & (S <= _INT)
        to_e = ((ch == 101) | (ch == 69)) & (S >= _INT) & (S <= _FRAC) & (nd[:c] > 0)
        st[:c] = np.select([m_int, m_frac, m_exp, to_sign, to_esign, to_dot, to_e],
                           [_INT, _FRAC, _EXP, _SIGN, _ESIGN, _DOT, _E], _BAD)
    ok = (nd > 0) & ((st == _INT) | (st == _DOT) | (st == _FRAC) | (st == _EXP))
    long_ = n[order] > _LONG
    if not (ok | long_).all():
        return None
    e10 = np.where(eneg, -ev, ev) - frac
    fast = ~long_ & (sig <= 15) & (np.abs(e10) <= 22)
    mf = mant.astype(np.float64)
    val = np.where(e10 >= 0, mf * _P10[np.clip(e10, 0, 22)], mf / _P10[np.clip(-e10, 0, 22)])
    val = np.where(neg, -val, val)
    slow = np.flatnonzero(~fast)
    if len(slow):
        ends = ss + n[order]
        try:
            val[slow] = [float(text[a:b]) for a, b in zip(ss[slow].tolist(),
                                                         ends[slow].tolist())]
        except ValueError:
            return None
        if not np.isfinite(val[slow]).all():
            return None
    out = np.empty(m)
    out[order] = val
    return out

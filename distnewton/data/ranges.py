"""One rank's share of a text file: the lines that start in its byte range.

Rank r of P owns the bytes ``[r * size // P, (r + 1) * size // P)`` and the
lines whose first byte lies there, so a line that straddles a boundary belongs
to exactly one rank (the one where it starts), and the P shares are the file's
lines in order.  :func:`range_blocks` reads a share in blocks of whole lines
(bounded memory: one block and one partial line at a time).
"""

from __future__ import annotations

import os


def byte_range(size: int, r: int, P: int) -> tuple[int, int]:
    """Rank r's bytes ``[start, end)`` of a file of ``size`` bytes."""
    return size * r // P, size * (r + 1) // P


def range_blocks(path, start: int, end: int, block_bytes: int):
    """Yield blocks of whole lines (each ends with its newline but maybe the file's
    last) whose first bytes lie in ``[start, end)``."""
    with open(path, "rb") as fh:
        if start > 0:
            fh.seek(start - 1)
            if fh.read(1) != b"\n":
                fh.readline()                  # that line started in the rank before
        pos = fh.tell()                        # the first line this rank owns
        tail = b""
        while pos < end:
            chunk = fh.read(block_bytes)
            if not chunk:                      # end of file: the last line, unterminated
                if tail:
                    yield tail
                return
            buf, base = tail + chunk, pos - len(tail)
            pos += len(chunk)
            limit = end - base                 # buf[limit:] starts past this range
            if limit <= len(buf):
                nl = buf.find(b"\n", max(limit - 1, 0))
                while nl < 0:                  # the range's last line goes on
                    more = fh.read(block_bytes)
                    if not more:
                        yield buf
                        return
                    buf += more
                    nl = buf.find(b"\n", max(limit - 1, 0))
                yield buf[:nl + 1]
                return
            cut = buf.rfind(b"\n") + 1
            if cut:
                yield buf[:cut]
            tail = buf[cut:]
        if tail:                               # a line that started before end
            rest = fh.readline()
            yield tail + rest


def file_size(path) -> int:
    return os.path.getsize(path)

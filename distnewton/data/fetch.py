"""``distnewton data fetch``: download a registered data set, verify it, cache it.

Sources, for registry entry ``e``:

* default: the official URL ``e.url`` (plain text or ``.bz2`` on the LIBSVM site);
* ``--mirror DIR`` (a local folder, e.g. ``../shared/data``) or ``--mirror URL``:
  ``MIRROR/e.file`` (the ``.bz2`` name, e.g. ``a9a.bz2``), else
  ``MIRROR/<basename of e.url>``, else the entry's ``mirror_names`` (phishing:
  ``phishing.crlf.bz2``, the name ``../shared/data`` holds it under).  The same
  code path as a download, so CI exercises it with no network.

The file is stored as ``DIR/e.file`` (bz2-compressed: a plain source is
compressed while it streams) under a temporary name; the sha256 of the
*decompressed* stream is computed on the fly and compared with the registry.
A mismatch removes the temporary file and raises a UserError (exit code 2):
nothing is left behind.  When the registry has no checksum for the entry the
file is kept with a warning that it could not be verified.  A verified file
gets a ``.sha256`` sidecar; fetching again is then a no-op (``--force``
downloads again).
"""

from __future__ import annotations

import bz2
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from distnewton.data.registry import data_dir, lookup
from distnewton.errors import UserError
from distnewton.filemode import fix_mode
from distnewton.progress import Bar, human_bytes, is_tty

CHUNK = 1 << 20
TIMEOUT = 60


@dataclass
class Fetched:
    name: str
    path: Path
    source: str            # where it came from ("cache" when nothing was copied)
    sha256: str            # of the decompressed file
    verified: bool         # False: the registry has no checksum for it
    bytes: int             # decompressed size


def _is_url(text):
    return urllib.parse.urlparse(str(text)).scheme in ("http", "https", "ftp", "file")


def _open_url(url):
    """(stream, total bytes or None); None when the server says 404."""
    req = urllib.request.Request(url, headers={"User-Agent": "distnewton"})
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None, None
        raise UserError(f"{url}: download failed (HTTP {exc.code} {exc.reason})") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, FileNotFoundError):      # file:// mirror without that name
            return None, None
        raise UserError(f"{url}: download failed ({reason}); no network? "
                        "use --mirror DIR_OR_URL") from None
    length = resp.headers.get("Content-Length")
    return resp, (int(length) if length and length.isdigit() else None)


def _sources(entry, mirror):
    """Candidate (label, opener) pairs, in order."""
    names = [entry.file, os.path.basename(urllib.parse.urlparse(entry.url).path),
             *entry.mirror_names]
    names = list(dict.fromkeys(names))
    if mirror is None:
        return [(entry.url, lambda: _open_url(entry.url))]
    if _is_url(mirror):
        base = str(mirror).rstrip("/") + "/"
        return [(base + n, (lambda u: lambda: _open_url(u))(base + n)) for n in names]
    folder = Path(mirror)
    if not folder.is_dir():
        raise UserError(f"--mirror {mirror}: not a folder or a URL")
    out = []
    for n in names:
        p = folder / n
        if p.is_file():
            out.append((str(p), (lambda p: lambda: (open(p, "rb"), p.stat().st_size))(p)))
    if not out:
        raise UserError(f"{entry.name}: not in mirror {mirror} (looked for "
                        + ", ".join(names) + ")")
    return out


def _copy(stream, total, compressed, out, bar):
    """Copy ``stream`` to ``out`` as bz2; return (sha256, bytes) of the decompressed data."""
    h, size, done = hashlib.sha256(), 0, 0
    dec = bz2.BZ2Decompressor() if compressed else None
    comp = None if compressed else bz2.BZ2Compressor(9)
    while chunk := stream.read(CHUNK):
        done += len(chunk)
        if compressed:
            out.write(chunk)
            data = chunk
            while data:
                if dec.eof:                   # multi-stream files (pbzip2, lbzip2)
                    data, dec = dec.unused_data, bz2.BZ2Decompressor()
                    if not data:
                        break
                try:
                    plain = dec.decompress(data)
                except OSError as exc:
                    raise UserError(f"not a valid bz2 stream ({exc})") from None
                h.update(plain)
                size += len(plain)
                data = dec.unused_data if dec.eof else b""
        else:
            h.update(chunk)
            size += len(chunk)
            out.write(comp.compress(chunk))
        if bar:
            bar.update(done, f"{human_bytes(done)}" + (f" / {human_bytes(total)}" if total else ""))
    if compressed and not dec.eof and done:
        raise UserError("truncated bz2 stream")
    if comp is not None:
        out.write(comp.flush())
    if bar:
        bar.update(done, human_bytes(done), force=True)
    return h.hexdigest(), size


def file_sha256_decompressed(path):
    """sha256 and size of a file's content after bz2 decompression (by extension)."""
    h, size = hashlib.sha256(), 0
    opener = bz2.open if str(path).endswith(".bz2") else open
    with opener(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _sidecar(path):
    return Path(str(path) + ".sha256")


def fetch(name, folder=None, mirror=None, force=False, progress=None, warn=None) -> Fetched:
    """Fetch registry entry ``name`` into ``folder`` (default :func:`data_dir`)."""
    entry = lookup(name)
    folder = Path(folder) if folder else data_dir()
    final = folder / entry.file
    warn = warn or (lambda msg: print(f"distnewton: warning: {msg}", file=sys.stderr))
    progress = is_tty(sys.stderr) if progress is None else progress
    if final.exists() and not force:
        side = _sidecar(final)
        known = side.read_text().split()[0] if side.exists() else None
        if known is None:
            known, _ = file_sha256_decompressed(final)
        if entry.sha256 is None or known == entry.sha256:
            if not side.exists():
                side.write_text(f"{known}  {entry.file}\n")
            if entry.sha256 is None:
                warn(f"{name}: no sha256 registered: cannot verify {final}")
            return Fetched(name, final, "cache", known, entry.sha256 is not None,
                           entry.bytes or -1)
        raise UserError(f"{final}: exists but its sha256 {known} does not match the "
                        f"registry ({entry.sha256}): delete it or fetch with --force")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--dir {folder}: cannot create ({exc.strerror})") from None
    for label, opener in _sources(entry, mirror):
        stream, total = opener()
        if stream is None:           # 404 at a mirror URL: try the next name
            continue
        compressed = label.endswith(".bz2")
        fd, tmp = tempfile.mkstemp(prefix=f".{entry.file}.", suffix=".part", dir=folder)
        bar = Bar(total, label=name) if progress else None
        try:
            with os.fdopen(fd, "wb") as out, stream:
                try:
                    digest, size = _copy(stream, total, compressed, out, bar)
                except UserError as exc:
                    raise UserError(f"{label}: {exc}") from None
            if bar:
                bar.close()
            if entry.sha256 is not None and digest != entry.sha256:
                raise UserError(f"{name}: sha256 mismatch for {label}: expected "
                                f"{entry.sha256}, got {digest} (decompressed); "
                                "nothing was written")
            fix_mode(tmp)                          # mkstemp made it 0600
            os.replace(tmp, final)
        finally:
            if bar:
                bar.close()
            if os.path.exists(tmp):
                os.unlink(tmp)
        _sidecar(final).write_text(f"{digest}  {entry.file}\n")
        if entry.sha256 is None:
            warn(f"{name}: no sha256 registered: cannot verify {label} "
                 f"(its decompressed sha256 is {digest})")
        return Fetched(name, final, label, digest, entry.sha256 is not None, size)
    raise UserError(f"{name}: not found at mirror {mirror} (looked for "
                    + ", ".join(label for label, _ in _sources(entry, mirror)) + ")")

"""Output files are claimed, never assumed (issue 28).

A result file (and the file of ``recover``, ``export``, ``Result.save``) is

1. **validated** completely before any work (:func:`check_path`): a name, not a
   folder (no trailing ``/``, not a directory nor a link to one), a name that
   fits the file system (``NAME_MAX``) and a path that fits ``PATH_MAX``, an
   existing file only with ``overwrite``, a folder that exists or can be
   created and in which a file can be created;
2. **claimed** (:class:`Claim`): a lock file ``.NAME.lock`` beside it, created
   with ``O_CREAT|O_EXCL`` and holding the host, pid and output path.  A
   second run to the same path fails at once (even with ``--overwrite``)
   while the first holds it; a lock left by a dead process of this host is
   taken over with a warning; one of another host is refused, naming it;
3. **published without clobbering** (:meth:`Claim.publish`): the complete
   temporary file is hard-linked to the final name when the path did not
   exist at start (``os.link`` fails when something appeared meanwhile: the
   caller then salvages), or renamed over the very file that was there at
   start (with ``overwrite``) or that this claim wrote before (periodic
   checkpoints), and over nothing else;
4. **released** at the end (the lock file removed).

Temporary files are named ``.tmp-KEY-HOST-PID-XXXXXXXX.SUFFIX`` (KEY: 8 hex
digits of the output's name, HOST: 6 of the host name; a fixed length, so a
long output name never makes them too long).  Claiming a path removes the
temporary files of that path (its lock is held: nobody else writes them) and
those of dead processes of this host anywhere in the folder, so the
leftovers of a killed write never outlive the next run there.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import hashlib
import json
import os
import re
import socket
import tempfile
import time

from ..errors import UserError, echo
from ..filemode import fix_mode

HOST = socket.gethostname()
#: who holds a claim, by absolute output path (this process's claims)
HELD: dict = {}


class OutputTaken(OSError):
    """The final name was taken by something this run did not claim."""


def _tag(text, n):
    return hashlib.sha1(os.fsencode(text)).hexdigest()[:n]


def limits(folder):
    """(NAME_MAX, PATH_MAX) of the file system holding ``folder`` (or its nearest
    existing parent)."""
    probe = os.path.abspath(folder)
    while not os.path.isdir(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    out = []
    for key, default in (("PC_NAME_MAX", 255), ("PC_PATH_MAX", 4096)):
        try:
            out.append(os.pathconf(probe, key))
        except (OSError, ValueError):
            out.append(default)
    return tuple(out)


def fit_name(name, limit, prefix="", suffix=""):
    """``prefix + name + suffix`` if it fits in ``limit`` bytes, else ``name``
    cut and followed by 12 hex digits of itself (still unique, still fits)."""
    whole = prefix + name + suffix
    if len(os.fsencode(whole)) <= limit:
        return whole
    room = limit - len(os.fsencode(prefix + suffix)) - 13
    cut = os.fsencode(name)[:max(room, 0)].decode("utf-8", "ignore")
    return f"{prefix}{cut}-{_tag(name, 12)}{suffix}"


def lock_path(path):
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, fit_name(name, limits(folder)[0], ".", ".lock"))


def temp_prefix(path, pid=None):
    """``.tmp-KEY-HOST-PID-`` of ``path``'s temporary files (KEY: its name)."""
    return (f".tmp-{_tag(os.path.basename(os.path.abspath(path)), 8)}-{_tag(HOST, 6)}-"
            f"{os.getpid() if pid is None else pid}-")


def temp_file(path, suffix):
    """A new, empty temporary file beside ``path`` (see the module docstring),
    with the mode ``open()`` gives (``0666 & ~umask``, not mkstemp's 0600:
    :mod:`distnewton.filemode`), which the published file keeps."""
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=suffix,
                               dir=os.path.dirname(os.path.abspath(path)))
    try:
        fix_mode(fd)
    except OSError:
        os.unlink(tmp)
        raise
    finally:
        os.close(fd)
    return tmp


TEMP = re.compile(r"\.tmp-([0-9a-f]{8})-([0-9a-f]{6})-(\d+)-")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def sweep(path):
    """Remove the temporary files of ``path`` (claimed: nobody writes them), and
    the temporary files and lock files of dead processes of this host in its folder."""
    folder = os.path.dirname(os.path.abspath(path))
    key, host = _tag(os.path.basename(os.path.abspath(path)), 8), _tag(HOST, 6)
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.startswith(".") and name.endswith(".lock"):
            who = holder(os.path.join(folder, name))
            if who is not None and who[0] == HOST and not alive(who[1]):
                remove_stale(os.path.join(folder, name), who)
            continue
        m = TEMP.match(name)
        if m is None or int(m.group(3)) == os.getpid():
            continue
        if m.group(1) == key or (m.group(2) == host and not alive(int(m.group(3)))):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))


def holder(lock):
    """(host, pid) written in a lock file, or None if unreadable."""
    try:
        with open(lock, encoding="utf-8") as fh:
            info = json.load(fh)
        return str(info["host"]), int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_stale(lock, who):
    """Remove the lock of dead holder ``who``; False when another took it first.

    Renamed aside first (one remover wins), checked, put back if it was no longer
    ``who``'s (taken over and renewed meanwhile)."""
    aside = f"{lock}.stale-{os.getpid()}"
    try:
        os.rename(lock, aside)
    except OSError:
        return False
    if holder(aside) != who:
        with contextlib.suppress(OSError):
            os.link(aside, lock)
        os.unlink(aside)
        return False
    os.unlink(aside)
    return True


def identity(path):
    """What tells one file from its replacement: (device, inode, size, mtime)."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


# -- validation -------------------------------------------------------------------
def check_path(path, overwrite):
    """Every check on an output path that needs no lock (UserError, before any work);
    the folders it created for it (parents first)."""
    path = os.fspath(path)
    if not path:
        raise UserError("output path: empty")
    if path.endswith(("/", os.sep)):
        raise UserError(f"{path}: output path ends in '/' (a folder): give a file name")
    folder, name = os.path.split(os.path.abspath(path))
    name_max, path_max = limits(folder)
    if len(os.fsencode(name)) > name_max:
        raise UserError(f"{path}: file name is {len(os.fsencode(name))} bytes long; this "
                        f"file system takes at most {name_max}")
    if len(os.fsencode(os.path.abspath(path))) >= path_max:
        raise UserError(f"{path}: path is {len(os.fsencode(os.path.abspath(path)))} bytes "
                        f"long; this system takes at most {path_max - 1}")
    if os.path.isdir(path):
        link = " (a symbolic link to one)" if os.path.islink(path) else ""
        raise UserError(f"{path}: output path is a directory{link}")
    if os.path.lexists(path) and not overwrite:
        raise UserError(f"{path}: exists (use --overwrite to replace it)")
    made, probe = [], folder
    while not os.path.lexists(probe) and os.path.dirname(probe) != probe:
        made.insert(0, probe)
        probe = os.path.dirname(probe)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        unmake(made)
        raise UserError(f"{path}: cannot create folder ({exc.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"{path}: folder is not writable")
    try:                                        # what the write will do, now
        os.unlink(temp_file(path, ".probe"))
    except OSError as exc:
        unmake(made)
        raise UserError(f"{path}: cannot create a file in {folder} ({exc.strerror})") from None
    return made


def unmake(made):
    """Remove the folders ``check_path`` made, if still empty (a failed run leaves none)."""
    for folder in reversed(made):
        with contextlib.suppress(OSError):
            os.rmdir(folder)


# -- the claim ----------------------------------------------------------------------
class Claim:
    """This process's claim on one output path (see the module docstring)."""

    def __init__(self, path, overwrite=False):
        self.path = os.path.abspath(os.fspath(path))
        self.shown = os.fspath(path)
        self.lock = lock_path(path)
        self.overwrite = overwrite
        self.existed = None                    # identity of the file we may replace
        self.owned = False
        self.made = []                         # folders made for it: removed if left empty

    def holder(self):
        """(host, pid) written in the lock file, or None if unreadable."""
        return holder(self.lock)

    def acquire(self):
        for _ in range(5):
            try:
                self.create_lock()
            except FileExistsError:
                self.take_over()
                continue
            except OSError as exc:
                raise UserError(f"{self.shown}: cannot create the lock file {self.lock} "
                                f"({exc.strerror})") from None
            self.owned = True
            HELD[self.path] = self
            self.existed = identity(self.path) if self.overwrite else None
            if not self.overwrite and os.path.lexists(self.path):
                self.release()                 # appeared since check_path
                raise UserError(f"{self.shown}: exists (use --overwrite to replace it)")
            sweep(self.path)
            return self
        raise UserError(f"{self.shown}: cannot take the lock {self.lock}: it keeps "
                        "changing (another run starting?)")

    def create_lock(self):
        """The lock file, complete when it appears: written under a temporary
        name, then hard-linked to its name (FileExistsError if it exists);
        without hard links, an exclusive create then the write."""
        tmp = temp_file(self.lock, ".lock")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump({"host": HOST, "pid": os.getpid(), "path": self.path}, fh)
            try:
                os.link(tmp, self.lock)
                return
            except FileExistsError:
                raise
            except OSError:                    # no hard links here
                pass
            fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"host": HOST, "pid": os.getpid(), "path": self.path}, fh)
        finally:
            os.unlink(tmp)

    def take_over(self):
        """The lock exists: refuse a live or foreign holder, remove a dead one."""
        who = self.holder()
        if who is None and identity(self.lock) is not None:
            time.sleep(0.1)                    # a run that is writing its lock just now
            who = self.holder()
        if who is None:
            if identity(self.lock) is not None:
                raise UserError(f"{self.shown}: locked by {self.lock} (unreadable); if no "
                                f"run writes this file, remove {self.lock}")
            return
        host, pid = who
        if host != HOST:
            raise UserError(f"{self.shown}: in use by a run on host {host} (pid {pid}, lock "
                            f"{self.lock}); if it has ended, remove {self.lock}")
        if pid == os.getpid() or alive(pid):
            raise UserError(f"{self.shown}: in use by another run (pid {pid} on {host}, "
                            f"lock {self.lock})")
        if remove_stale(self.lock, who):
            echo(f"distnewton: warning: {self.shown}: took over the lock of pid {pid}, "
                 "which has ended")

    def publish(self, tmp):
        """Move the complete ``tmp`` to the path: link when nothing was there,
        replace only the file claimed; OutputTaken otherwise (``tmp`` stays)."""
        now = identity(self.path)
        if now is not None and now != self.existed:
            how = "appeared" if self.existed is None else "changed"
            raise OutputTaken(errno.EEXIST, f"{self.shown} {how} during the run (not "
                              "written by it): not replaced")
        if now is None:
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                raise OutputTaken(errno.EEXIST, f"{self.shown} appeared during the run "
                                  "(not written by it): not replaced") from None
            except OSError as exc:             # no hard links here: claim the name first
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP,
                                     errno.EMLINK, errno.EXDEV):
                    raise
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                os.replace(tmp, self.path)
            else:
                os.unlink(tmp)
        else:
            os.replace(tmp, self.path)
        self.existed = identity(self.path)     # ours now: later checkpoints replace it

    def release(self):
        if self.owned:
            self.owned = False
            if HELD.get(self.path) is self:
                del HELD[self.path]
            with contextlib.suppress(OSError):
                if self.holder() == (HOST, os.getpid()):
                    os.unlink(self.lock)
            unmake(self.made)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def claim(path, overwrite=False):
    """Validate ``path`` and claim it (:class:`Claim`; release it, or use ``with``)."""
    made = check_path(path, overwrite)
    if os.path.abspath(os.fspath(path)) in HELD:
        raise UserError(f"{os.fspath(path)}: in use by another run of this process")
    c = Claim(path, overwrite)
    c.made = made
    try:
        return c.acquire()
    except BaseException:
        unmake(made)
        raise


def held(path):
    """This process's claim on ``path``, or None."""
    return HELD.get(os.path.abspath(os.fspath(path)))


def release(path):
    if path is not None and held(path) is not None:
        held(path).release()


@contextlib.contextmanager
def released_on_error(path):
    """Release the claim on ``path`` if the block raises (a failed run frees its path)."""
    try:
        yield
    except BaseException:
        release(path)
        raise


@atexit.register
def release_all():
    for c in list(HELD.values()):
        c.release()

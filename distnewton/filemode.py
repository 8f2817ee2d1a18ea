"""The permissions of the files distnewton writes: those of ``open()``.

A file that ``open(path, "w")`` creates gets mode ``0666 & ~umask`` (0644
under the usual umask 022, 0640 under 027, 0600 under 077), a folder that
``os.makedirs`` creates ``0777 & ~umask``.  Files written atomically go through
a temporary file first, and ``tempfile.mkstemp`` creates it 0600 whatever the
umask: renamed into place, a result file on a group's shared results folder
would be unreadable to the group.  So every writer that makes a temporary
file (:func:`distnewton.io.claim.temp_file`: results, checkpoints, fallback
archives, exports, lock files; ``distnewton data fetch``) gives it
:func:`file_mode` with :func:`fix_mode`, and nothing here ever makes a file
more open than ``open()`` would.

The umask can only be read by setting it (``os.umask`` returns the old value),
which for an instant changes it for every thread of the process.
:func:`current_umask` therefore reads the ``Umask:`` line of
``/proc/self/status`` (Linux 4.7 and later) and only falls back to setting it,
under a lock, to the most restrictive value 0o077 meanwhile: a file another
thread creates in that instant is at worst less readable, never more.
"""

from __future__ import annotations

import os
import stat
import threading

FILE_MODE, DIR_MODE = 0o666, 0o777
_LOCK = threading.Lock()


def _proc_umask():
    """The umask from ``/proc/self/status``, or None where there is no such line."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def current_umask() -> int:
    """This process's umask now (read, never changed for longer than an instant)."""
    mask = _proc_umask()
    if mask is not None:
        return mask
    with _LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open()`` gives a new file: ``0666 & ~umask``."""
    return FILE_MODE & ~current_umask()


def dir_mode() -> int:
    """The mode ``os.makedirs`` gives a new folder: ``0777 & ~umask``."""
    return DIR_MODE & ~current_umask()


def fix_mode(target) -> None:
    """Give the new file ``target`` (a path or an open file descriptor) the mode
    ``open()`` would have (for a file ``tempfile.mkstemp`` made 0600), or the
    folder the mode of ``os.makedirs`` (for ``tempfile.mkdtemp``'s 0700)."""
    st = os.fstat(target) if isinstance(target, int) else os.stat(target)
    mode = dir_mode() if stat.S_ISDIR(st.st_mode) else file_mode()
    if stat.S_IMODE(st.st_mode) != mode:
        if isinstance(target, int):
            os.fchmod(target, mode)
        else:
            os.chmod(target, mode)

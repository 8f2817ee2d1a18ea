"""A command run as a user runs it in a terminal: on a pseudo-terminal.

The child starts a new session with the pty as its controlling terminal and is
its foreground process group, as a shell's foreground job is; writing ``^C``
(b"\\x03") to the master side makes the line discipline send SIGINT to that
group, exactly as the keyboard does.  Everything the job prints on the
terminal is collected by a reader thread; tests wait for events in it
(:meth:`PtyJob.wait_for`), never for fixed times.
"""

import fcntl
import os
import re
import signal
import subprocess
import termios
import threading
import time


def _controlling_terminal():
    """In the child: a new session, the pty (its stdin) as controlling terminal."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyJob:
    """``argv`` on a new pty (stdin, stdout and stderr), 100 columns wide."""

    def __init__(self, argv, env=None, cwd=None):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, b"\x18\x00\x64\x00\x00\x00\x00\x00")
        self.master, self.chunks, self.lock = master, [], threading.Lock()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     cwd=cwd, preexec_fn=_controlling_terminal,
                                     close_fds=True)
        os.close(slave)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:                # EIO: every holder of the slave side is gone
                return
            if not data:
                return
            with self.lock:
                self.chunks.append(data)

    @property
    def output(self):
        with self.lock:
            return b"".join(self.chunks).decode("utf-8", "replace")

    def wait_for(self, pattern, timeout=180, start=0):
        """The match of regex ``pattern`` in the output after offset ``start``;
        fails when the job ends or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output[start:])
            if found:
                return found
            if self.proc.poll() is not None:
                self.reader.join(5)
                found = re.search(pattern, self.output[start:])
                assert found, f"ended (exit {self.proc.returncode}) before {pattern!r}:\n" \
                              f"{self.output[-3000:]}"
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} after {timeout} s:\n{self.output[-3000:]}")

    def ctrl_c(self):
        """The keyboard's Ctrl-C: the line discipline signals the foreground group."""
        os.write(self.master, b"\x03")

    def finish(self, timeout=180):
        """Wait for the end: (exit code, everything printed)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)    # its own group: the session it leads
            self.proc.wait()
            raise AssertionError(f"still running after {timeout} s:\n{self.output[-3000:]}")
        self.reader.join(10)
        os.close(self.master)
        return code, self.output

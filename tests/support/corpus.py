"""The adversarial corpus's harness (issue 28): one :class:`Case` per bad input,
damaged file, fault or corner case, run by :func:`check` with hard time limits.

Every case asserts:

- the exit code (``code``, 2 unless said);
- the one line distnewton printed (``distnewton: error: ...``) contains ``message``
  (``{tmp}`` expanded): the file:line, key or argument at fault;
- no file appeared in the case's folder but those named in ``new`` (globs), and no
  ``.tmp-*`` file is left anywhere in it (those of a killed write included);
- the run ended within ``timeout`` seconds: ``launch="proc"``/``"mpi"`` kill the
  whole process group after it (a hang fails the case, it never stalls the
  suite); ``"inproc"`` (click's runner in this process, the fast default) is
  cut by SIGALRM.

Test modules ``tests/test_corpus_*.py`` hold the cases by class, marked
``corpus``; ``python -m pytest -m corpus --collect-only -q`` counts them.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from . import launch

#: the default training file: two classes, 4 features, 8 rows
DATA = ("1 1:0.5 2:1\n-1 2:0.3 3:1\n1 1:1 4:0.2\n-1 2:1 3:0.5\n"
        "1 1:0.7 3:0.1\n-1 2:0.9 4:1\n1 1:0.2 2:0.4\n-1 3:0.8 4:0.3\n")
CONFIG = {"data": {"train": "{tmp}/data.svm"}, "algorithm": {"name": "giant"},
          "run": {"max_rounds": 3}}
RUN = ["run", "{tmp}/c.yaml", "--backend", "sim", "--workers", "2", "-o", "{tmp}/out.h5", "-q"]
ERROR = "distnewton: error: "


@dataclass
class Case:
    """One adversarial input and what must happen.

    ``config`` (merged into :data:`CONFIG` section by section; ``None`` values
    drop a key) or ``raw_config`` (text or bytes) becomes ``{tmp}/c.yaml``;
    ``files`` maps names to text, bytes, or a callable ``f(path)`` that creates
    it; ``prepare(tmp)`` runs before the snapshot (a first run, a tampered
    checkpoint); ``check(tmp, out)`` adds assertions (``out``: the text printed).
    ``lines``: how many lines distnewton may print (None: any; the error line is
    then the last one starting with ``distnewton: error:``).
    ``signal``: ``(seconds, "SIGTERM")`` sent to the process (group) after that
    long (``launch`` proc or mpi); ``(when, "SIGTERM")`` with a callable
    ``when(tmp)``: sent as soon as it returns true (polled every 50 ms).
    """

    name: str
    args: list = field(default_factory=lambda: list(RUN))
    message: str | None = None
    code: int = 2
    data: str | bytes | None = DATA
    config: dict | None = None
    raw_config: str | bytes | None = None
    files: dict = field(default_factory=dict)
    prepare: Callable | None = None
    check: Callable | None = None
    new: tuple = ()
    lines: int | None = 1
    launch: str = "inproc"
    n: int = 3
    timeout: float = 60.0
    signal: tuple | None = None
    env: dict = field(default_factory=dict)

    def __str__(self):
        return self.name


def expand(value, tmp):
    """``value`` with every ``{tmp}`` in its strings replaced by the case's folder."""
    if isinstance(value, str):
        return value.replace("{tmp}", str(tmp))
    if isinstance(value, list):
        return [expand(v, tmp) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, tmp) for k, v in value.items()}
    return value


def config_of(extra):
    out = copy.deepcopy(CONFIG)
    for section, values in (extra or {}).items():
        if values is None or not isinstance(values, dict):
            out[section] = values
            continue
        merged = {**(out.get(section) or {}), **values}
        out[section] = {k: v for k, v in merged.items() if v is not None}
    return out


def write(path: Path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    if callable(content):
        content(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def materialise(case: Case, tmp: Path):
    """The case's files in ``tmp``."""
    if case.data is not None:
        write(tmp / "data.svm", case.data)
    if case.raw_config is not None:
        write(tmp / "c.yaml", case.raw_config)
    else:
        (tmp / "c.yaml").write_text(yaml.safe_dump(expand(config_of(case.config), tmp),
                                                   sort_keys=False))
    for name, content in case.files.items():
        write(tmp / name, expand(content, tmp) if isinstance(content, str) else content)
    if case.prepare is not None:
        case.prepare(tmp)


def listing(tmp: Path) -> set:
    return {str(p.relative_to(tmp)) for p in tmp.rglob("*")}


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def run_inproc(args, timeout, env):
    from click.testing import CliRunner

    from distnewton.cli import main
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        res = CliRunner(env=env).invoke(main, args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    if isinstance(res.exception, Timeout):
        raise AssertionError(f"hang: no exit within {timeout} s (in process)")
    return res.exit_code, res.output


def run_proc(cmd, timeout, env, cwd, sig=None):
    """Run ``cmd`` in its own process group; SIGKILL the group after ``timeout``."""
    e = launch.env()
    e.update(env)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", cwd=cwd, env=e, start_new_session=True)
    t0 = time.monotonic()
    try:
        if sig is not None and callable(sig[0]):      # when the case's folder shows it
            while proc.poll() is None and time.monotonic() - t0 < timeout:
                if sig[0]():
                    os.killpg(proc.pid, getattr(signal, sig[1]))
                    break
                time.sleep(0.05)
        elif sig is not None:
            try:
                proc.wait(timeout=sig[0])
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, getattr(signal, sig[1]))
        out, err = proc.communicate(timeout=max(1.0, timeout - (time.monotonic() - t0)))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"hang: no exit within {timeout} s: {' '.join(cmd)}") from None
    return proc.returncode, out, err


def marks(tmp: Path) -> Path:
    """The case's ``DISTNEWTON_TEST_MARK`` folder (beside its own: not a file it leaves)."""
    folder = Path(tmp).parent / f"{Path(tmp).name}-marks"
    folder.mkdir(exist_ok=True)
    return folder


def in_rounds(rank, settle=1.0, folder=marks):
    """A signal condition: ``settle`` s after ``rank`` first reached a round
    (``DISTNEWTON_TEST_MARK``), so past the first evaluation round and inside the
    run's long local phase, however long the start-up took."""
    def reached(tmp):
        f = folder(tmp) / f"round-{rank}"
        return f.exists() and time.time() - f.stat().st_mtime >= settle
    return reached


def run(case: Case, tmp: Path):
    """Launch the case; (exit code, distnewton's own lines, everything printed)."""
    args = [str(a) for a in expand(case.args, tmp)]
    env = {"DISTNEWTON_CACHE": str(tmp.parent / f"{tmp.name}-cache"),
           "DISTNEWTON_TEST_MARK": str(marks(tmp)), **case.env}
    if case.launch == "inproc":
        assert case.signal is None, "signals need launch proc or mpi"
        old = os.getcwd()
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        os.chdir(tmp)
        try:
            code, out = run_inproc(args, case.timeout, env)
        finally:
            os.chdir(old)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return code, [line for line in out.splitlines() if line.strip()], out
    cmd = [sys.executable, "-m", "distnewton", *args]
    if case.launch == "mpi":
        cmd = [launch.mpiexec(), "-n", str(case.n), *cmd]
    sig = case.signal
    if sig is not None and callable(sig[0]):
        sig = (lambda: case.signal[0](tmp), sig[1])
    code, out, err = run_proc(cmd, case.timeout, env, tmp, sig)
    return code, launch.own_lines(err) + [l for l in out.splitlines() if l.strip()], out + err


def check(case: Case, tmp: Path):
    """Run one case and assert everything the module docstring lists."""
    tmp = Path(tmp)
    materialise(case, tmp)
    before = listing(tmp)
    code, lines, text = run(case, tmp)
    assert code == case.code, f"exit {code}, expected {case.code}:\n{text}"
    if case.message is not None:
        errors = [l for l in lines if l.startswith(ERROR)]
        assert errors, f"no '{ERROR}' line:\n{text}"
        if case.lines is not None:
            assert len(lines) == case.lines, f"{len(lines)} lines, expected {case.lines}:\n{text}"
        assert expand(case.message, tmp) in errors[-1], text
    after = listing(tmp)
    import fnmatch
    extra = {p for p in after - before
             if not any(fnmatch.fnmatch(p, g) for g in case.new)}
    assert not extra, f"left behind: {sorted(extra)}\n{text}"
    tmps = [p for p in after if ".tmp-" in os.path.basename(p)]
    assert not tmps, f"temporary files left: {tmps}\n{text}"
    if case.check is not None:
        case.check(tmp, text)


def params(cases, klass):
    """``pytest.mark.parametrize`` arguments: ids ``klass/name``; MPI cases marked
    ``mpi``, cases in a process of their own ``slow``."""
    import pytest
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "case names must be unique"
    out = []
    for c in cases:
        marks = [pytest.mark.corpus]
        if c.launch == "mpi":
            marks.append(pytest.mark.mpi)
        elif c.launch == "proc":               # a process of its own: not the inner loop
            marks.append(pytest.mark.slow)
        out.append(pytest.param(c, id=f"{klass}/{c.name}", marks=marks))
    return out

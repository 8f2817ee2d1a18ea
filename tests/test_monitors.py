"""Session and monitors: the run assembled in one object, watched by monitors.

The rows a monitor sees are checked against the run's own history (the hooks'
wiring); the numbers themselves are checked against scikit-learn in test_api.py.
"""

import numpy as np
import pytest
from support.launch import synth

import distnewton
from distnewton.io.record import Outcome


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("monitors") / "train.svm", 400, 10, density=0.6,
                 seed=5)


def raw_config(train, algorithm="giant", **run):
    return {"data": {"train": str(train)}, "model": {"loss": "logistic", "lambda": "1/n"},
            "algorithm": {"name": algorithm}, "run": {"max_rounds": 40, **run}}


def test_session_run_returns_an_outcome(data):
    from distnewton.config import resolve
    from distnewton.session import Session
    cfg = resolve(raw_config(data, "gd", max_rounds=3, backend="sim", workers=2))
    session = Session.open(cfg)
    outcome = session.run()
    assert isinstance(outcome, Outcome) and outcome.w is outcome.alg.w
    assert outcome.status == "max_rounds" and outcome.state is None
    assert outcome.history.last("comm_rounds") == 3 and session.rt.K == 2


def test_a_monitor_sees_every_row_and_the_hooks_in_order(data):
    from distnewton.monitors import Monitor

    class Recorder(Monitor):
        def __init__(self):
            self.events, self.rows = [], []

        def start(self, loop):
            self.events.append("start")

        def iteration(self, loop, row):
            self.rows.append(row)
            self.events.append("row")

        def end(self, loop, outcome):
            self.events.append(("end", outcome.status))

    rec = Recorder()
    res = distnewton.solve(raw_config(data, "gd", max_rounds=4), workers=2, monitors=[rec])
    rows = len(res.history["iteration"])
    assert rows >= 3 and rec.events == ["start"] + ["row"] * rows + [("end", "max_rounds")]
    for key in ("iteration", "comm_rounds", "loss", "grad_norm", "wall_time"):
        np.testing.assert_array_equal([r[key] for r in rec.rows], res.history[key], key)


def test_a_callback_that_returns_true_stops_the_run_after_that_iteration(data):
    seen = []

    def enough(row):
        seen.append(row["iteration"])
        return row["iteration"] >= 2

    res = distnewton.solve(raw_config(data, "gd", max_rounds=50), workers=2, callback=enough)
    assert res.status == "stopped" and "monitor enough" in res.message
    assert seen == [0, 1, 2] and res.iterations == 2


# -- where the progress bar goes (distnewton.terminal) ------------------------------
def test_pipes_and_files_are_not_watched_and_plan_follows_run_progress(tmp_path, monkeypatch):
    import os

    from distnewton import terminal
    name, ppid, pgrp, _, _ = terminal.proc_stat(os.getpid())
    assert (ppid, pgrp) == (os.getppid(), os.getpgrp()) and name
    monkeypatch.setenv("PMI_RANK", "0")       # as under a launcher: pytest is none
    r, w = os.pipe()
    with os.fdopen(r), os.fdopen(w, "w") as wr, open(tmp_path / "f", "w") as f:
        assert terminal.watched(wr) == (False, None) and terminal.watched(f) == (False, None)
        assert terminal.plan("auto", wr, f) == (None, True, None)
        assert terminal.plan("never", wr, f) == (None, True, None)
        assert terminal.plan("always", wr, f) == (wr, False, None)    # one stream, ordered
    assert terminal.launcher_pid() is None


def test_a_terminal_that_is_not_ours_still_counts_as_a_terminal():
    """A pty that is no controlling terminal of ours (no job control to ask): watched."""
    import os

    from distnewton import terminal
    master, slave = os.openpty()
    try:
        with os.fdopen(os.dup(slave), "w") as tty:
            assert terminal.watched(tty)[0]
            stream, lines, _ = terminal.plan("auto", tty, tty)
            assert stream is tty and lines is False
    finally:
        os.close(master)
        os.close(slave)


def test_run_progress_always_draws_the_bar_instead_of_the_lines(data, capsys):
    distnewton.solve(raw_config(data, "gd", max_rounds=5, progress="always"), workers=2,
                     verbose=1)
    out = capsys.readouterr().out
    assert "\r[" in out and "5/5 rounds" in out and "iter  rounds" not in out
    distnewton.solve(raw_config(data, "gd", max_rounds=5, progress="never"), workers=2,
                     verbose=1)
    out = capsys.readouterr().out
    assert "\r" not in out and out.splitlines()[0].split()[:2] == ["iter", "rounds"]

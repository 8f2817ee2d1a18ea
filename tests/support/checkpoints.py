"""Stop and resume: a run stopped by the test fault ``DISTNEWTON_TEST_SIGNAL=SIG@N``
(the master raises the real signal after iteration N), and the check that the resumed
run ends where an uninterrupted one does (tests/test_checkpoint.py describes it)."""

import numpy as np

from support.launch import cli, read_result

EXIT_STOPPED = 3
STOP_AT = 3


def stopped_run(cfg, out, backend, n=3, sig="SIGTERM", at=STOP_AT, opts=()):
    """Run cfg with the stop fault; returns the CompletedProcess."""
    return cli("run", cfg, *opts, "-o", out, "-q", n=n if backend == "mpi" else None,
               extra_env={"DISTNEWTON_TEST_SIGNAL": f"{sig}@{at}"})


def assert_resumed_equals_full(stopped, full, stop_hist):
    _, hf, wf = read_result(full)
    attrs, hr, wr = read_result(stopped)
    assert attrs["status"] in ("converged", "max_rounds", "stalled")   # lbfgs at 1e-16
    k = len(stop_hist["iteration"])
    assert 1 < k < len(hr["iteration"])
    np.testing.assert_array_equal(hr["iteration"][:k], stop_hist["iteration"])
    for col in ("iteration", "comm_rounds", "bytes_up", "bytes_down"):
        np.testing.assert_array_equal(hr[col], hf[col], err_msg=col)
    np.testing.assert_allclose(hr["loss"], hf["loss"], rtol=1e-12)
    np.testing.assert_allclose(wr, wf, rtol=0, atol=1e-12 * np.abs(wf).max())
    assert np.all(np.diff(hr["wall_time"]) >= 0)

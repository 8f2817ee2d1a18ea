"""Parallel ingestion: every rank parses its own byte range of the file.

References: the file itself (the ranks' shares put back together are its bytes,
each line once) and the rank-0 path (``DISTNEWTON_PARALLEL_INGEST=0``: rank 0
reads the whole file and scatters the shards), whose shards, iterates and error
messages the parallel path must reproduce.
"""

from __future__ import annotations

import numpy as np
import pytest

from distnewton.data.ranges import byte_range, range_blocks
from support.launch import cli, own_lines, read_result, write_config


def shares(path, P, block):
    size = path.stat().st_size
    return [list(range_blocks(path, *byte_range(size, r, P), block)) for r in range(P)]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b""])
def test_the_shares_put_together_are_the_file_each_line_once(tmp_path, ending):
    rng = np.random.default_rng(4)
    lines = [b"x" * int(rng.choice([0, 1, 3, 50, 400])) + str(i).encode() for i in range(300)]
    lines[7] = b""                                   # empty lines and a long one
    lines[100] = b"y" * 5000
    text = b"\n".join(lines).replace(b"\n", b"\n" if ending != b"\r\n" else b"\r\n") + ending
    path = tmp_path / "f.txt"
    path.write_bytes(text)
    for P in (1, 2, 3, 5, 7, 64):
        for block in (1, 7, 64, 1 << 16):
            parts = shares(path, P, block)
            assert b"".join(b"".join(p) for p in parts) == text, (P, block)
            for blocks in parts:                      # blocks are whole lines
                for b in blocks[:-1]:
                    assert b.endswith(b"\n")


def test_a_share_starts_where_a_line_starts(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"aaaa\nbb\ncccccc\n")          # 15 bytes
    # 3 ranks: [0,5) [5,10) [10,15): line 2 starts at 5, line 3 at 8 (in rank 1's range)
    assert [b"".join(p) for p in shares(path, 3, 4)] == [b"aaaa\n", b"bb\ncccccc\n", b""]


def small_file(path, n=600, d=40, seed=0, labels=(-1, 1)):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    rows = []
    for _ in range(n):
        cols = np.sort(rng.choice(d, rng.integers(1, 9), replace=False))
        vals = rng.standard_normal(len(cols))
        z = float(vals @ w[cols])
        lab = labels[int(z > 0)] if len(labels) == 2 else labels[int(rng.integers(len(labels)))]
        rows.append(f"{lab} " + " ".join(f"{c + 1}:{float(v)!r}" for c, v in zip(cols, vals)))
    path.write_text("\n".join(rows) + "\n")
    return path


def both_paths(tmp_path, n, data, model=None, run=None, algorithm="giant"):
    cfg = write_config(tmp_path / "c.yaml", data=data,
                       model={"loss": "logistic", "lambda": "1/n", **(model or {})},
                       algorithm={"name": algorithm},
                       run={"max_rounds": 12, "grad_rtol": 1e-12, **(run or {})})
    out = {}
    for par in ("1", "0"):
        res = cli("run", cfg, "-q", "-o", tmp_path / f"r{par}.h5", n=n,
                  extra_env={"DISTNEWTON_PARALLEL_INGEST": par})
        assert res.returncode == 0, res.stderr
        out[par] = read_result(tmp_path / f"r{par}.h5")
    # the parallel path ran (it times its phases), then the rank-0 path
    assert "setup_seconds_json" in out["1"][0] and "setup_seconds_json" not in out["0"][0]
    return out["1"], out["0"]


@pytest.mark.mpi
@pytest.mark.parametrize("n,data,model,run", [
    (3, {"partition": "iid", "seed": 3}, {"fit_intercept": True}, {}),
    (3, {"partition": "contiguous"}, {}, {}),
    (4, {"partition": "label_skew", "partition_alpha": 0.3}, {}, {}),
    (2, {"partition": "iid"}, {}, {"workers": 3, "master_shard": True}),
    (3, {"partition": "iid", "rows_per_worker": 150, "n_features": 45}, {}, {}),
])
def test_the_parallel_path_gives_the_rank_0_paths_run(tmp_path, n, data, model, run):
    train = small_file(tmp_path / "train.svm")
    small_file(tmp_path / "test.svm", n=100, seed=1)
    data = {"train": str(train), "test": str(tmp_path / "test.svm"), **data}
    (pa, ha, wa), (pb, hb, wb) = both_paths(tmp_path, n, data, model, run)
    np.testing.assert_array_equal(pa["shard_sizes"], pb["shard_sizes"])
    for key in ("n_samples", "n_features", "dataset_sha256", "label_map", "dataset"):
        assert pa[key] == pb[key], key
    for col in ("comm_rounds", "bytes_up", "bytes_down"):
        np.testing.assert_array_equal(ha[col], hb[col], err_msg=col)
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-12)
    np.testing.assert_allclose(ha["test_accuracy"], hb["test_accuracy"], rtol=0)
    np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-12 * np.abs(wb).max())


@pytest.mark.mpi
@pytest.mark.parametrize("weights,class_weight", [(True, "balanced"), (False, {3: 2.5})])
def test_row_and_class_weights_are_sharded_with_the_rows(tmp_path, weights, class_weight):
    """``data.weights`` (read by rank 0, scattered) and ``model.class_weight``
    (balanced: global class masses): the rank-0 path's weighted run."""
    train = small_file(tmp_path / "train.svm", labels=(3, 7))
    data = {"train": str(train), "partition": "iid", "seed": 1}
    if weights:
        rng = np.random.default_rng(9)
        values = rng.uniform(0, 3, 600)
        (tmp_path / "w.txt").write_text("\n".join(repr(float(v)) for v in values))
        data["weights"] = str(tmp_path / "w.txt")
    (pa, ha, wa), (pb, hb, wb) = both_paths(tmp_path, 3, data, {"class_weight": class_weight})
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-12)
    np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-12 * np.abs(wb).max())
    assert pa["setup_bytes"] > 0 and pb["setup_bytes"] > 0


@pytest.mark.mpi
@pytest.mark.parametrize("n,weighted,layout", [(3, "1", "0;1;2"), (4, "0", "0,1;;2;3,4")])
def test_the_exchange_gives_every_worker_its_rows_from_many_blocks(n, weighted, layout):
    """Shares cut into blocks of 1-7 rows (rank 0's empty), rows left out, ranks
    with several workers or none: each shard is X[parts[k]] (tests/support/exchange_job.py)."""
    import subprocess
    import sys
    from pathlib import Path

    from support.launch import env, mpiexec
    job = Path(__file__).parent / "support" / "exchange_job.py"
    for seed in (0, 1):
        res = subprocess.run([mpiexec(), "-n", str(n), sys.executable, str(job), str(seed),
                              weighted, layout], capture_output=True, text=True, env=env(),
                             timeout=120)
        assert res.returncode == 0, res.stderr
        assert res.stdout.count("ok") == n, res.stdout


@pytest.mark.mpi
def test_the_problem_solver_auto_weighs_is_the_rank_0_paths(tmp_path):
    """n, d, shard sizes, non-zeros and squared row lengths (rank 0 reads no rows:
    a reduction over an empty share once mixed int64 into a float sum)."""
    import subprocess
    import sys
    from pathlib import Path

    from support.launch import env, mpiexec
    train = small_file(tmp_path / "train.svm")
    cfg = write_config(tmp_path / "c.yaml", data={"train": str(train)},
                       model={"fit_intercept": True}, algorithm={"name": "newton"})
    job = Path(__file__).parent / "support" / "ingest_job.py"
    res = subprocess.run([mpiexec(), "-n", "3", sys.executable, str(job), str(cfg)],
                         capture_output=True, text=True, env=env(), timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


@pytest.mark.mpi
def test_labels_are_mapped_from_every_ranks_labels(tmp_path):
    """Labels 3 and 7 (two classes, mapped -1/+1) with 7 only in the file's last rows."""
    path = small_file(tmp_path / "train.svm", labels=(3, 3))
    lines = path.read_text().splitlines()
    lines[-5:] = ["7" + line[1:] for line in lines[-5:]]
    path.write_text("\n".join(lines) + "\n")
    (pa, _, wa), (pb, _, wb) = both_paths(tmp_path, 3, {"train": str(path)})
    assert pa["label_map"] == pb["label_map"] and "two_labels" in pa["label_map"]
    np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-12 * np.abs(wb).max())


@pytest.mark.mpi
@pytest.mark.parametrize("where", ["first", "last"])
def test_a_bad_line_is_named_with_its_line_in_the_whole_file(tmp_path, where):
    path = small_file(tmp_path / "train.svm")
    lines = path.read_text().splitlines()
    at = 2 if where == "first" else len(lines) - 3
    lines[at] = "1 5:0.5 x:1"
    path.write_text("\n".join(lines) + "\n")
    cfg = write_config(tmp_path / "c.yaml", data={"train": str(path)},
                       algorithm={"name": "gd"})
    msgs = []
    for par in ("1", "0"):
        res = cli("run", cfg, "-q", "-o", tmp_path / f"r{par}.h5", n=3,
                  extra_env={"DISTNEWTON_PARALLEL_INGEST": par})
        assert res.returncode == 2, res.stderr
        assert not (tmp_path / f"r{par}.h5").exists()
        msgs.append(own_lines(res.stderr))
    assert msgs[0] == msgs[1] and len(msgs[0]) == 1
    assert msgs[0][0].startswith(f"distnewton: error: {path}:{at + 1}: ")

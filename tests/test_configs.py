"""Every file under configs/ resolves and runs a few rounds on the sim backend, so a
config cannot rot, and names registered data sets (``train: a9a``), never a path
into this checkout.

With ../shared/data beside the checkout the runs go through the registry as a
user's would: ``--fetch --mirror ../shared/data`` into a data folder of the session
(DISTNEWTON_DATA), so each set is fetched once, verified against the registry's
sha256, and read from there.  On a plain clone a registered set is replaced by a
synthetic stand-in with the config's feature count (and enough rows for its
workers); the config's own keys are all kept."""

import glob
from pathlib import Path

import numpy as np
import pytest
import yaml

from support.launch import ROOT, SHARED, cli, read_result, synth

from distnewton.data.registry import REGISTRY

#: whole runs (processes, MPI or files): outside the `-m "not slow"` inner loop
pytestmark = pytest.mark.slow

CONFIGS = sorted(Path(p).relative_to(ROOT) for p in glob.glob(str(ROOT / "configs/**/*.yaml"),
                                                                 recursive=True))
ROUNDS = 6
WORKERS = 4


def stand_in(tmp_path, name, features, rows):
    path = tmp_path / f"stand-in-{name}.svm"
    if not path.exists():
        synth(path, rows, features, density=0.3, seed=7)
    return path


@pytest.fixture(scope="session")
def data_folder(tmp_path_factory):
    """The session's DISTNEWTON_DATA: the registered sets fetched from the mirror."""
    return tmp_path_factory.mktemp("registry-data")


def overrides(cfg_path, tmp_path):
    """--set options: few rounds, WORKERS simulated workers, and stand-ins for the
    registered sets when there is no mirror to fetch them from."""
    raw = yaml.safe_load((ROOT / cfg_path).read_text())
    data = raw.get("data") or {}
    sets = [f"run.max_rounds={ROUNDS}", f"run.workers={WORKERS}", "run.backend=sim",
            "run.checkpoint_every=null"]
    features = data.get("n_features") or 20
    if data.get("synth"):        # generated on first use: a small one (synth1m is d = 1e6)
        sets += [f"data.train={tmp_path / 'synth.svm'}",
                 "data.synth={n_samples: 400, n_features: 30, density: 0.2, seed: 1}",
                 "data.n_features=null"]
        return sets, False
    stood_in = False
    if data.get("rows_per_worker"):     # the papers' splits need the real set's rows
        sets.append("data.rows_per_worker=null")
    for key in ("train", "test"):
        value = data.get(key)
        if value and not SHARED.is_dir():
            sets.append(f"data.{key}={stand_in(tmp_path, key, features, 400)}")
            stood_in = True
    return sets, stood_in


def test_every_config_names_registered_sets():
    """A user's clone has no ../shared/data: the configs name registered sets (or
    generate their data), and their comments say which fetch to run."""
    for cfg in CONFIGS:
        text = (ROOT / cfg).read_text()
        data = yaml.safe_load(text).get("data") or {}
        assert "shared/data" not in text, cfg
        if data.get("synth"):
            continue
        names = [data[k] for k in ("train", "test") if data.get(k)]
        assert names and all(n in REGISTRY for n in names), (cfg, names)
        assert f"distnewton data fetch {' '.join(names)}" in text, cfg


@pytest.mark.parametrize("cfg", CONFIGS, ids=[str(c) for c in CONFIGS])
def test_every_config_resolves_and_runs(cfg, tmp_path, data_folder):
    sets, stood_in = overrides(cfg, tmp_path)
    out = tmp_path / "r.h5"
    args = [a for s in sets for a in ("--set", s)]
    if SHARED.is_dir():                  # through the registry, as on a user's machine
        args += ["--fetch", "--mirror", SHARED]
    res = cli("run", cfg, *args, "-o", out, "--overwrite", "-q", cwd=ROOT,
              extra_env={"DISTNEWTON_DATA": str(data_folder)})
    assert res.returncode == 0, f"{cfg} (stand-in data: {stood_in}): {res.stderr}"
    attrs, hist, w = read_result(out)
    raw = yaml.safe_load((ROOT / cfg).read_text())
    assert attrs["algorithm"] == raw["algorithm"]["name"]
    assert attrs["n_workers"] == WORKERS
    if SHARED.is_dir() and not raw["data"].get("synth"):    # the fetched, cached file
        entry = REGISTRY[raw["data"]["train"]]
        assert attrs["dataset"] == str(data_folder / entry.file)
        assert attrs["n_samples"] == entry.n_samples
        assert (data_folder / entry.file).is_file()
    assert 1 <= hist["comm_rounds"][-1] <= ROUNDS + 40      # a line search may end a round late
    assert len(w) == attrs["n_features"]
    # a few rounds prove no convergence (RANL's stale blocks are not monotone early):
    # the run must have gone on with finite values, its config's keys all accepted
    assert attrs["status"] in ("max_rounds", "converged"), attrs["message"]
    assert np.isfinite(hist["loss"]).all() and np.isfinite(w).all()

"""A tiny algorithm plugin, written by the tests into a temporary folder.

``myplugin`` (module) registers ``plugin_gd``: heavy-ball gradient descent
with its own worker task ``myplugin.grad``::

    g_t = grad f(w_t)                         1 round: d down, d + 1 up per worker
    w_{t+1} = w_t - step_size g_t + momentum (w_t - w_{t-1})

With ``split: true`` the gradient comes from two subset rounds (worker 0,
then workers 1..K-1: the same bytes, 2 rounds).  Its attributes cover the
checkpoint's types (array, int, list of floats, dict), and each worker counts
its calls in ``ctx.state`` (worker state, checkpointed too).

Also an entry-point distribution (``myplug-0.1.dist-info``) whose
``ep_gd = myplug_mod:EPGD`` subclasses it, the scikit-learn reference, and the runs
of the plugin tests (``config``, ``run`` on sim or ``mpiexec``, ``BACKENDS``).
"""

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from support.launch import ROOT, cli, write_config

PLUGIN = '''
"""Heavy-ball gradient descent: a distnewton plugin (tests/support/plugin_fixture.py)."""
import numpy as np

from distnewton.algorithms import Algorithm, register_algorithm
from distnewton.params import BOOL, FLOAT, Param, positive, nonneg
from distnewton.runtime import worker_task


@worker_task("myplugin.grad")
def _grad(ctx, w):
    ctx.state["calls"] = ctx.state.get("calls", 0) + 1
    f, g = ctx.shard.loss_grad_sum(w)
    return np.concatenate(([f], g))


@register_algorithm
class PluginGD(Algorithm):
    """Plugin heavy-ball gradient descent (fixed step)."""

    name = "plugin_gd"
    params = {
        "step_size": Param(FLOAT, 2.0, "step size", check=positive),
        "momentum": Param(FLOAT, 0.5, "heavy-ball momentum", check=nonneg),
        "split": Param(BOOL, False, "gradient from two subset rounds"),
    }
    columns = {"plugin_norm": np.float64}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prev = self.w.copy()
        self.t = 0
        self.norms = []
        self.memo = {"last_f": 0.0, "scale": np.ones(2)}

    def gradient_sums(self):
        rt, d = self.rt, self.prob.d
        if not self.p.split or rt.K < 2:
            return rt.round("myplugin.grad", self.w, up=d + 1)
        first = rt.round("myplugin.grad", self.w, up=d + 1, to=[0])
        rest = rt.round("myplugin.grad", self.w, up=d + 1, to=list(range(1, rt.K)))
        return first + rest

    def step(self):
        n, lam = self.prob.n, self.prob.lam
        out = self.gradient_sums()
        g = out[1:] / n + lam * self.w
        w_next = self.w - self.p.step_size * g + self.p.momentum * (self.w - self.prev)
        self.prev, self.w = self.w, w_next
        self.t += 1
        self.norms.append(float(np.linalg.norm(g)))
        self.memo["last_f"] = float(out[0] / n)
        return {"step_size": self.p.step_size, "plugin_norm": self.norms[-1]}
'''

RANK0_ONLY = '''
"""Importable on rank 0 only (as a module on a node-local disk would be)."""
from distnewton.cli import env_rank
if env_rank() != 0:
    raise ImportError(f"rank0only needs a library that rank {env_rank()} lacks")
import myplugin  # noqa: F401
'''

EXTRA_TASK = '''
"""Registers one more worker task on rank 2 only."""
import numpy as np
from distnewton.cli import env_rank
from distnewton.runtime import worker_task
import myplugin  # noqa: F401
if env_rank() == 2:
    @worker_task("myplugin.extra")
    def _extra(ctx, w):
        return w
'''

CLASH = '''
from distnewton.algorithms import register_algorithm
from myplugin import PluginGD

@register_algorithm
class Giant(PluginGD):
    name = "giant"
'''

UNSTORABLE = '''
from distnewton.algorithms import register_algorithm
from myplugin import PluginGD

@register_algorithm
class Unstorable(PluginGD):
    name = "plugin_unstorable"

    def step(self):
        self.cache = {"seen": {1, 2}}          # a set: not a checkpoint type
        return super().step()
'''

EP_MODULE = '''
from myplugin import PluginGD


class EPGD(PluginGD):
    """Entry-point heavy-ball gradient descent."""

    name = "ep_gd"
'''


def write_plugins(folder: Path) -> Path:
    """The plugin modules in ``folder`` (to put on PYTHONPATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {"myplugin": PLUGIN, "rank0only": RANK0_ONLY, "extra_task": EXTRA_TASK,
                       "clash": CLASH, "unstorable": UNSTORABLE}.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(text))
    return folder


def write_entry_point(site: Path, entry_points="ep_gd = myplug_mod:EPGD\n") -> Path:
    """A distribution ``myplug 0.1`` in ``site`` (on PYTHONPATH, importlib.metadata
    finds its dist-info) with ``entry_points`` in the group distnewton.algorithms."""
    info = site / "myplug-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[distnewton.algorithms]\n" + entry_points)
    (site / "myplug_mod.py").write_text(textwrap.dedent(EP_MODULE))
    return site


def sklearn_optimum(path, d, lam):
    """w* of mean logistic loss + lam/2 ||w||^2 (C = 1/(lam n), no intercept)."""
    from sklearn.datasets import load_svmlight_file
    from sklearn.linear_model import LogisticRegression
    X, y = load_svmlight_file(str(path), n_features=d, zero_based=False)
    ref = LogisticRegression(C=1.0 / (lam * X.shape[0]), fit_intercept=False, tol=1e-12,
                             solver="newton-cholesky", max_iter=200).fit(X, y)
    return ref.coef_.ravel()


def round_bytes(K, d):
    """(down, up) of one myplugin.grad round to K workers: header + w down, f and g up."""
    return K * (64 + 8 * d), K * 8 * (d + 1)


def assert_close(a, b, tol):
    a, b = np.asarray(a), np.asarray(b)
    assert np.max(np.abs(a - b)) <= tol * max(1.0, np.max(np.abs(b))), np.max(np.abs(a - b))


# -- runs of the plugin tests (tests/test_plugins.py, tests/test_subset_rounds.py) --
D, N, LAM, K = 6, 400, 0.01, 2
MPI = pytest.mark.mpi


def pythonpath(*folders):
    return {"PYTHONPATH": os.pathsep.join([*map(str, folders), str(ROOT),
                                           os.environ.get("PYTHONPATH", "")])}


def config(tmp_path, train, name="plugin_gd", plugins=("myplugin",), **run):
    return write_config(tmp_path / "c.yaml", data={"train": str(train)},
                        model={"lambda": LAM},
                        algorithm={"name": name, "step_size": 3.0, "momentum": 0.5},
                        run={"max_rounds": 300, "grad_rtol": 1e-11,
                             "plugins": list(plugins), **run})


def run(cfg, out, backend, *args, folders=(), expect=0):
    """``distnewton run`` on sim (K workers) or ``mpiexec -n K+1``; the result."""
    opts = ["--backend", "sim", "--workers", K] if backend == "sim" else []
    res = cli("run", cfg, *opts, "-o", out, "-q", *args, n=K + 1 if backend == "mpi" else None,
              extra_env=pythonpath(*folders))
    assert res.returncode == expect, res.stderr
    return res


BACKENDS = ["sim", pytest.param("mpi", marks=MPI)]

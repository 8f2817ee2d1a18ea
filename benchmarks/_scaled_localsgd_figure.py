"""The figure of benchmarks/paper_scaled_localsgd.py: relative suboptimality against
communication rounds, the median over the seeds with a min-max band, plain Local
SGD against the paper's scalings (Algorithm 1, global mode), one panel per
(data set, partition).

Drawn from a result file, never from the run in memory: :func:`save_curves`
writes the per-seed curves of section 1 to an HDF5 file and :func:`draw` reads
it back, so ``--figure-only`` redraws the PNG without running anything.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURE_PNG = os.path.join(REPO, "docs", "benchmarks", "img", "paper_scaled_localsgd.png")
#: the lines: the paper's baseline and its three scalings in Algorithm 1
LINES = ("Local SGD", "Adam global", "RMSProp global", "OASIS global")
COLORS = ("black", "tab:blue", "tab:green", "tab:red")


def save_curves(path, res, datasets, partitions):
    """Section 1's curves of LINES (seeds x rounds) and gammas, one group per panel."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as f:
        for ds in datasets:
            for part in partitions:
                g = f.create_group(f"{ds}/{part}")
                for lab in LINES:
                    runs = res["tuned", ds, part, lab]
                    n = min(len(s) for s in runs.subs)
                    h = g.create_group(lab)
                    h["sub"] = np.array([s[-n:] for s in runs.subs])
                    h["rounds"] = np.asarray(runs.rounds[0][-n:])
                    h.attrs["gamma"] = runs.gamma


def draw(h5_path, png_path):
    """One panel per (data set, partition): median and min-max band per line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    with h5py.File(h5_path, "r") as f:
        panels = [(ds, part) for ds in f for part in f[ds]]
        rows = sorted({ds for ds, _ in panels})
        cols = sorted({p for _, p in panels})
        fig, axes = plt.subplots(len(rows), len(cols), figsize=(5 * len(cols), 3.6 * len(rows)),
                                 squeeze=False)
        for ds, part in panels:
            ax = axes[rows.index(ds)][cols.index(part)]
            n_seeds = 0
            for lab, color in zip(LINES, COLORS):
                h = f[ds][part][lab]
                sub, rnd = h["sub"][()], h["rounds"][()]
                n_seeds = sub.shape[0]
                ax.fill_between(rnd, sub.min(axis=0), sub.max(axis=0), color=color, alpha=0.15,
                                linewidth=0)
                ax.plot(rnd, np.median(sub, axis=0), color=color,
                        label=f"{lab} (gamma {h.attrs['gamma']:g})")
            ax.set_yscale("log")
            ax.set_title(f"{ds} {part}: median and min-max of {n_seeds} seeds")
            ax.set_xlabel("communication rounds")
            ax.set_ylabel("(f - f*) / f*")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        os.makedirs(os.path.dirname(png_path), exist_ok=True)
        fig.savefig(png_path, dpi=90)
        plt.close(fig)

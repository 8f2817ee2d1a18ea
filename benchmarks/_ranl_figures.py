"""The RANL figures (imported from the script's folder), drawn from
benchmarks/results/paper_ranl.json alone (``python benchmarks/paper_ranl.py --plot``):

- ``ranl_rate.png``: relative suboptimality against iterations on each data set, every
  variant (seed 0), with the paper's (1/2)^t line from the starting point;
- ``ranl_kappa.png``: iterations to 1e-6 against kappa on coupled ridge data (the
  median over seeds; a run that does not get there is drawn at the cap, hollow)."""

from __future__ import annotations

import os

import numpy as np

COLORS = ("C3", "C0", "C1", "C2", "C4", "C5")
MARKERS = ("o", "s", "D", "^", "v", "<")


def style(blob, name):
    """(colour, marker) of a method: the variants in their order, GD grey."""
    order = list(blob["labels"])
    if name not in order:
        return "0.4", "X"
    i = order.index(name) % len(COLORS)
    return COLORS[i], MARKERS[i]


def draw(blob, folder):
    """Write both PNGs into ``folder`` (matplotlib, Agg)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(folder, exist_ok=True)
    rate_figure(plt, blob, os.path.join(folder, "ranl_rate.png"))
    kappa_figure(plt, blob, os.path.join(folder, "ranl_kappa.png"))


def rate_figure(plt, blob, path):
    """One panel per data set (3 a row), the legend in a spare panel."""
    names = blob["names"]
    cols = 3
    rows = (len(names) + 1 + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(10, 3.1 * rows), sharey=True)
    axes = np.atleast_1d(axes).ravel()
    handles = []
    for ax, name in zip(axes, names):
        start = None
        for key, sub in blob["curves"].items():
            data, variant = key.split("|")
            if data != name:
                continue
            sub = np.clip(np.nan_to_num(np.asarray(sub, float), nan=1e6, posinf=1e6), 1e-16, 1e6)
            start = sub[0]
            ax.semilogy(np.arange(len(sub)), sub, color=style(blob, variant)[0], lw=1.2,
                        label=blob["labels"].get(variant, variant))
        if start is not None:
            t = np.arange(0, 60)
            ax.semilogy(t, start * 0.5 ** t, "k--", lw=1, label="(1/2)^t from x_0: the claim")
        for target in blob["targets"]:
            ax.axhline(target, color="0.8", lw=0.6)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_ylim(1e-16, 1e6)
        handles = ax.get_legend_handles_labels()
    for ax in axes[::cols]:
        ax.set_ylabel("(f - f*) / f*")
    for ax in axes[len(names):]:
        ax.axis("off")
    axes[-1].legend(*handles, fontsize=6, loc="center right")
    fig.suptitle("RANL: relative suboptimality (K = 4, iid, lambda = 1/n, seed 0; grey "
                 "lines: the targets 1e-3, 1e-4, 1e-6)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def kappa_figure(plt, blob, path):
    target = str(blob["targets"][-1])
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    methods = sorted({key.split("|")[2] for key in blob["kappa"]})
    for m in methods:
        ks, ys, reached = [], [], []
        cap = blob["gd_rounds"] if m.startswith("GD") else blob["rounds"]
        for k in blob["kappas"]:
            per = blob["kappa"].get(f"coupled|{k:g}|{m}")
            if per is None:
                continue
            v = [np.nan if r[target] is None else r[target] for r in per]
            ks.append(k)
            ok = not np.all(np.isnan(v)) and np.mean(np.isnan(v)) <= 0.5
            reached.append(ok)
            ys.append(np.nanmedian(v) if ok else cap)
        color, marker = style(blob, m)
        ax.loglog(ks, ys, color=color, lw=1, label=blob["labels"].get(m, m))
        for k, y, ok in zip(ks, ys, reached):
            ax.loglog(k, y, marker, color=color, mfc=color if ok else "none", ms=7)
    ax.axhline(blob["rounds"], color="0.7", lw=0.6, ls=":")
    ax.set_xlabel("condition number kappa")
    ax.set_ylabel(f"iterations to {float(target):g}")
    ax.set_title("Coupled ridge (rows span every region); hollow: not reached by the cap",
                 fontsize=8)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""The claims tables of benchmarks/paper_ranl.py (imported from the script's folder):
one table per claim of the RANL paper, each variant's measurements at every target
and the verdict by benchmarks/_claims.py's one rule (``verdict``, for the paper's
variant only; the other rows say what the rule would give and are labelled not the
paper's)."""

from __future__ import annotations

import numpy as np

from _claims import PAPER, TARGETS, Claim, label, verdict
from _tables import markdown_table

SETTING = "a9a, w8a, phishing, ijcnn1; K = 4, lambda = 1/n"
CLAIMS = {
    "rate": Claim("RANL (Chen et al. 2023)", "Theorem (linear rate)",
                  "E||x_{t+1} - x*||^2 <= (1/2) E||x_t - x*||^2",
                  f"{SETTING}, iid shards; holds at T when every data set reaches T within "
                  "1.5 log2(s_0/T) iterations (1.5 x 3.32 rounds per decade)"),
    "kappa": Claim("RANL (Chen et al. 2023)", "abstract",
                   "rounds independent of the condition number of the problem",
                   "ridge whose rows span every region (coupled), kappa 1e2, 1e4, 1e6, "
                   "K = 4, lambda 1e-12; holds at T when every kappa reaches T and the most "
                   "iterations are <= 2 x the fewest + 2"),
    "comm": Claim("RANL (Chen et al. 2023)", "abstract, experiments",
                  "up to 60% less communication than first-order federated methods",
                  f"{SETTING}, label_skew shards (Dirichlet 0.5); holds at T when on some "
                  "data set RANL's bytes to T, the d x d Hessian round included, are <= 50% "
                  "of both GD's (Armijo) and Local SGD's (FedAvg)"),
}

NOTES = {
    "kappa": "With capacity 1 the frozen Hessian of a ridge problem is its exact Hessian: "
             "one Newton step lands on x* whatever kappa, which says nothing about pruning "
             "or stale regions; the masked gradient with the paper's partial masks is the "
             "row that tests them (an independent review's implementation: 23, 95 and > 300 "
             "rounds for kappa 1e2, 1e4, 1e6).",
    "comm": "A baseline that misses a target within its cap (Local SGD here: lr 0.01, one "
            "epoch of batch-1 SGD per round, 100 rounds; its best is in the table below) "
            "counts with its bytes at the cap, so a saving against it is a lower bound.",
}


def med(values, cap):
    """Median over seeds of a count (None: not reached), as text."""
    v = [np.nan if x is None else x for x in values]
    if all(np.isnan(v)):
        return f">{cap}"
    m = np.nanmedian(v)
    miss = sum(np.isnan(v))
    return f"{m:.0f}" + (f" ({miss}/{len(v)} >{cap})" if miss else "")


def rate_cells(rate, names, variant, t, cap):
    return ", ".join(f"{n} {med([r['to'][t] for r in rate[n, variant]], cap)}" for n in names)


def kappa_cells(kappa, variant, t, cap, kappas):
    return "iterations " + ", ".join(
        med([r[t] for r in kappa["coupled", k, variant]], cap) for k in kappas)


def comm_cells(comm, at_cap, names, variant, t):
    """Per data set where RANL reaches t: its kB and its saving against each baseline
    (against a baseline that misses t: a lower bound, from the bytes at its cap)."""
    best = []
    for n in names:
        b = [r[t] for r in comm[n, variant]]
        if all(x is None for x in b):
            continue
        rb = np.nanmedian([np.nan if x is None else x for x in b])
        parts = []
        for m in ("GD (Armijo)", "Local SGD (FedAvg)"):
            v, short = comm[n, m][0][t], m.split(" (")[0]
            parts.append(f"{1 - rb / v:.0%} vs {short}" if v else
                         f">= {1 - rb / at_cap[n, m]:.0%} vs {short} (misses it)")
        best.append(f"{n} {rb / 1e3:.0f} kB: " + ", ".join(parts))
    return "; ".join(best) or "RANL reaches it nowhere"


def claims_tables(margins, holds, seeds, names, args, rate, kappa, comm, at_cap):
    """Markdown lines of the three claims tables (also printed), verdicts by the rule."""
    kappas = sorted({k for _, k, _ in kappa})
    cells = {"rate": lambda v, t: rate_cells(rate, names, v, t, args.rounds - 1),
             "kappa": lambda v, t: kappa_cells(kappa, v, t, args.rounds - 1, kappas),
             "comm": lambda v, t: comm_cells(comm, at_cap, names, v, t)}
    lines = []
    for key, claim in CLAIMS.items():
        header = ["variant"] + [f"to {t:g}" for t in TARGETS] + ["verdict"]
        rows = []
        for variant, vseeds in seeds.items():
            held = {t: holds([margins[key](variant, t, s) for s in vseeds]) for t in TARGETS}
            v = verdict(held)
            rows.append([label(variant)]
                        + [f"{cells[key](variant, t)}: "
                           + {True: "holds", False: "does not hold", None: "not measured"}[held[t]]
                           for t in TARGETS]
                        + [v if variant == PAPER else f"({v} by the rule; not the paper's)"])
        title = f"{claim.text} ({claim.where})"
        markdown_table(header, rows, title)
        lines += [f"### {title}", "", f"Setting: {claim.setting}.", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows] + [""]
        lines += [NOTES[key], ""] if key in NOTES else []
    return lines

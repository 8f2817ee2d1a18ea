"""The claims table of benchmarks/paper_scaled_localsgd.py: one row per claim of
"Local Methods with Adaptivity via Scaling" (and issue 18's OASIS question), the
verdict computed from the measured numbers (``res``: the script's results by
section).  Every sentence that states a finding is built from the numbers it
states, or chosen by them."""

from __future__ import annotations

import numpy as np
import scaled_localsgd_bench as B  # noqa: E402  (benchmarks/, the script's folder)

#: "no worse" in area (mean log10 suboptimality): within 0.02 (5% in suboptimality)
NO_WORSE = 0.02


def verdict(hits, total):
    return "yes" if hits == total else ("no" if hits == 0 else "partly")


def listing(items):
    return ", ".join(items) if items else "none"


def claims(bench, res, methods):
    rows = []
    if "tuned" in res["done"]:
        rows += tuned_claims(bench, res, methods)
    if "oasis" in res["done"]:
        rows.append(oasis_claim(bench, res))
    if "theory" in res["done"]:
        rows += theory_claims(bench, res)
    return rows


def tuned_claims(bench, res, methods):
    dss, labels = list(bench.datasets), [m[0] for m in methods]
    probs = [(ds, p) for ds in dss for p in B.PARTITIONS]
    area = lambda ds, p, lab: res["tuned", ds, p, lab]["area"]           # noqa: E731
    t = lambda ds, p, lab: res["tuned", ds, p, lab]                      # noqa: E731
    best = {(ds, p): min((m[0] for m in methods if m[1] != "identity"),
                         key=lambda lab: area(ds, p, lab)) for ds, p in probs}
    rows = []

    wins = [ds for ds in dss if area(ds, "iid", best[ds, "iid"]) < area(ds, "iid", "Local SGD")]
    rows.append([
        "Scaling makes Local SGD converge faster (CIFAR-10, ResNet-18)",
        ", ".join(f"{ds} iid" for ds in dss) + f", K = {bench.args.workers}, gamma tuned per "
        "method", "; ".join("%s: best %s area %.2f, tail %.1e, R(3e-2) %s; Local SGD %.2f, "
                            "%.1e, %s" % (ds, best[ds, "iid"], area(ds, "iid", best[ds, "iid"]),
                                          t(ds, "iid", best[ds, "iid"])["tail"],
                                          t(ds, "iid", best[ds, "iid"])["reach"][1],
                                          area(ds, "iid", "Local SGD"),
                                          t(ds, "iid", "Local SGD")["tail"],
                                          t(ds, "iid", "Local SGD")["reach"][1]) for ds in dss),
        verdict(len(wins), len(dss)),
        "" if len(wins) == len(dss) else "no scaling beats Local SGD on "
        + listing([ds for ds in dss if ds not in wins])])

    gain = {(ds, p): area(ds, p, "Local SGD") - area(ds, p, best[ds, p]) for ds, p in probs}
    more = [ds for ds in dss if gain[ds, "label_skew"] > gain[ds, "iid"]]
    rows.append([
        "Scaling helps most under heterogeneous data",
        ", ".join(dss) + ": iid against label_skew (Dirichlet 0.5)",
        "; ".join("%s: area gain of the best scaling over Local SGD %.2f iid, %.2f label_skew"
                  % (ds, gain[ds, "iid"], gain[ds, "label_skew"]) for ds in dss),
        verdict(len(more), len(dss)),
        "" if len(more) == len(dss) else "the gain under label skew is smaller on "
        + listing([ds for ds in dss if ds not in more])])

    def rank(ds, lab):
        return sorted(labels, key=lambda x: area(ds, "label_skew", x)).index(lab) + 1
    hut = {ds: rank(ds, "OASIS global") for ds in dss}
    exact = {ds: rank(ds, "OASIS global, exact diag") for ds in dss}
    n_hut, n_exact = sum(r == 1 for r in hut.values()), sum(r == 1 for r in exact.values())
    rows.append([
        "Global OASIS scaling does best under heterogeneity",
        ", ".join(f"{ds} label_skew" for ds in dss) + f", {len(labels)} methods",
        "; ".join("%s: OASIS global (Hutchinson) ranks %d of %d, area %.2f; with the exact "
                  "diagonal ranks %d, %.2f; best %s %.2f" % (
                      ds, hut[ds], len(labels), area(ds, "label_skew", "OASIS global"),
                      exact[ds], area(ds, "label_skew", "OASIS global, exact diag"),
                      min(labels, key=lambda x: area(ds, "label_skew", x)),
                      min(area(ds, "label_skew", x) for x in labels)) for ds in dss),
        "yes" if n_hut == len(dss) else ("partly" if n_exact == len(dss) or n_hut else "no"),
        "" if n_hut == len(dss) else
        "global OASIS is best with the exact diagonal of the batch Hessian, not with the "
        "paper's Hutchinson statistic (one 32-row sample per client and round, noisy: "
        "section 2b): the estimate, not the global mode, is what falls short"
        if n_exact == len(dss) else "global OASIS is not the best method here"])

    lose = [f"{ds} {p}" for ds, p in probs
            if area(ds, p, "Adam local") >= area(ds, p, "Adam global")]
    rows.append([
        "Adam: local scaling works better than global", f"{len(probs)} problems, tuned gamma",
        "; ".join("%s %s: local %.2f, global %.2f" % (ds, p, area(ds, p, "Adam local"),
                                                      area(ds, p, "Adam global"))
                  for ds, p in probs), verdict(len(probs) - len(lose), len(probs)),
        "" if not lose else "global is better on " + listing(lose) + " (a guess, not "
        "measured further: under label skew each client's own D fits its skewed shard)"])

    worse = [f"{ds} {p}" for ds, p in probs
             if area(ds, p, "OASIS global") > area(ds, p, "OASIS local") + NO_WORSE]
    rows.append([
        "OASIS: global scaling no worse than local, sometimes better",
        f"{len(probs)} problems, tuned gamma (no worse: area within {NO_WORSE})",
        "; ".join("%s %s: global %.2f, local %.2f" % (ds, p, area(ds, p, "OASIS global"),
                                                      area(ds, p, "OASIS local"))
                  for ds, p in probs), verdict(len(probs) - len(worse), len(probs)),
        "" if not worse else "local is better on " + listing(worse) + ": it updates D every "
        "step from its own samples (10x the statistics of global's one per round)"])
    return rows


def oasis_claim(bench, res):
    o = lambda lab: res["oasis", lab]                                     # noqa: E731
    none, oas = o("no scaling (identity, gamma 1)"), o("OASIS global, defaults")
    ex = o("estimate: exact (diag H_z, no Hutchinson noise)")
    b9 = o("beta 0.9 (the x^0 warm start forgotten faster)")
    g1, g01 = o("gamma 0.1"), o("gamma 0.01")
    a3, a1 = o("alpha 1e-3"), o("alpha 0.1")
    loc = o("mode: local")
    d = res["oasis_diag"]["OASIS global, defaults"]
    dx = res["oasis_diag"]["estimate: exact (diag H_z, no Hutchinson noise)"]
    med = lambda s: float(np.median(s["final"]))                         # noqa: E731
    measured = ("seed 0: OASIS %.1e, none %.1e; over %d seeds final median %.1e against %.1e "
                "(OASIS's range %.1e..%.1e), tail %.1e against %.1e, R(3e-2) %s against %s" % (
                    oas["final"][0], none["final"][0], len(oas["final"]), med(oas), med(none),
                    oas["final"].min(), oas["final"].max(), oas["tail"], none["tail"],
                    oas["reach"][1], none["reach"][1]))
    why = (
        "The gap is one seed's last round: constant-step noise; over the seeds OASIS ends %s "
        "(median %.1e against %.1e). What is real is a %s start (R(3e-2) %s against %s), "
        "from the statistic sent at a sync: (1) one 32-row Hutchinson sample has std %.1fx its "
        "mean and is negative with probability %.2f; the exact batch diagonal reaches 3e-2 at "
        "round %s and ends at tail %.1e; (2) the warm start D_1 = s_1 is taken at x^0, where "
        "diag H is %.1fx diag H at the end, and with one update a round at beta 0.99 it keeps "
        "weight 0.99^p, so after %d rounds D_hat is %.2fx diag H(w) on the coordinates it "
        "scales (%.2fx with the exact diagonal); beta 0.9: R(3e-2) %s. Local mode (an update "
        "every step) reaches 3e-2 at %s. Not the cause: the step (gamma 0.1 starts faster, "
        "R(3e-2) %s, but ends at %.1e; 0.01 ends as low, %.1e, at R(3e-2) %s) and clipping "
        "(%d%% of the coordinates have diag H < alpha; alpha 1e-3 ends at %.1e, 0.1 reaches "
        "3e-2 at %s). No default is wrong against the paper (Hutchinson and the warm start are "
        "OASIS's, the statistic at a sync is left open), so none changed; ``estimate: exact`` "
        "is the remedy, as an option." % (
            "lower" if med(oas) < med(none) else "higher", med(oas), med(none),
            "slower" if (oas["reach"][1] or np.inf) > (none["reach"][1] or np.inf) else
            "no faster", oas["reach"][1], none["reach"][1], d["noise"], d["negative"],
            ex["reach"][1],
            ex["tail"], d["h0_over_hw"], bench.args.rounds, d["dhat_over_hw"],
            dx["dhat_over_hw"], b9["reach"][1], loc["reach"][1], g1["reach"][1], med(g1),
            med(g01), g01["reach"][1], round(100 * d["below_alpha"]), med(a3),
            a1["reach"][1]))
    return ["Issue 18: OASIS global ends at 2.7e-2 against 1.3e-2 with no scaling",
            f"{bench.oasis_set} iid, K = 4, {bench.args.rounds} rounds, the defaults",
            measured, "yes (seed 0)", why]


def theory_claims(bench, res):
    th = lambda lab: res["theory", lab]                                   # noqa: E731
    base = th("Local SGD, step_size theory")
    parts, ok, slow = [], 0, []
    for lab in ("Adam global, both theory", "OASIS global, both theory"):
        r = th(lab)
        r0, r1 = base["reach"][0], r["reach"][0]
        hit = r1 is not None and r0 is not None and r1 / r0 <= float(r["ratio"])
        ok += hit
        if hit:
            slow.append(r1 / r0)
        parts.append("%s: R(1e-1) %s against Local SGD's %s at 1/(4L): %s, bound Gamma/alpha %s"
                     % (lab.split(",")[0], r1, r0, "-" if r1 is None or r0 is None else
                        "%.1fx slower" % (r1 / r0), r["ratio"]))
    rows = [["Local SGD's rate kept up to a factor Gamma/alpha (theory step and beta_t)",
             f"{bench.oasis_set} iid, K = {bench.args.workers}, {bench.args.theory_rounds} "
             "rounds, step_size and beta_schedule theory", "; ".join(parts), verdict(ok, 2),
             ("the factor is a worst case: measured %s; but at gamma = alpha/(4L) scaling is "
              "slower than Local SGD's own theory step (coordinates with D_hat >> alpha move "
              "gamma/D_hat), and the tuned gamma %g is %.0fx the theory's"
              % (" and ".join("%.1fx" % s for s in slow),
                 th("Adam global, tuned gamma (constant beta)")["gamma"],
                 th("Adam global, tuned gamma (constant beta)")["gamma"]
                 / th("Adam global, both theory")["gamma"]))
             if ok else "did not reach 1e-1 within the rounds"]]
    cmp_ = [(m, th(f"{m}, tuned gamma, beta_schedule theory"),
             th(f"{m}, tuned gamma (constant beta)")) for m in ("Adam global", "OASIS global")]
    keeps = sum(a["tail"] <= 1.5 * c["tail"] for _, a, c in cmp_)
    rows.append([
        "Corollary 1's beta_t (D_hat changing slower than the method contracts) keeps "
        "convergence", "the same, tuned gamma, beta_schedule theory against constant beta 0.99",
        "; ".join("%s: tail %.1e against %.1e, R(3e-2) %s against %s" % (
            m, a["tail"], c["tail"], a["reach"][1], c["reach"][1]) for m, a, c in cmp_),
        verdict(keeps, len(cmp_)),
        "the cap on 1 - beta_t (%s) freezes D at the first statistic (x^0's): convergence is "
        "kept, with a slower start where x^0's larger curvature shrinks the steps; a safeguard "
        "of the analysis, not a speed-up" % ", ".join(
            "%s %.0e" % (m.split()[0], a["cap"]) for m, a, _ in cmp_)])
    return rows

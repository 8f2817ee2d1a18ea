"""FedNL: Newton's method with Hessians learned from compressed differences.

Safaryan, Islamov, Qian, Richtarik, "FedNL: Making Newton-type methods
applicable to federated learning", ICML 2022 (arXiv 2106.02969): Algorithm 1
(FedNL), Algorithm 2 (FedNL-LS) and Algorithm 3 (FedNL-PP).  Notation: client
i (a worker, i = 1..K) holds f_i, the mean loss over its n_i rows plus
(lambda/2)||x||^2; f = sum_i (n_i/n) f_i (the paper's plain mean for equal
shards, and every mean below is weighted alike).  H_i is client i's learned
Hessian, H = sum_i (n_i/n) H_i the master's copy of their mean, C a matrix
compressor (:mod:`.compressors`: on the upper triangle), alpha the Hessian
learning rate, mu the floor of the projection [M]_mu = V max(Lambda, mu) V^T.

FedNL, round k (one gather round; ``h0: local`` starts from H_i = Hess f_i(x_0)):

    client i:  g_i = grad f_i(x_k),  S_i = C(Hess f_i(x_k) - H_i),
               l_i = ||Hess f_i(x_k) - H_i||_F        (option 2 only)
               sends g_i, S_i (, l_i);  H_i <- H_i + alpha S_i
    master:    g = sum (n_i/n) g_i,  l = sum (n_i/n) l_i
               x_{k+1} = x_k - [H]_mu^{-1} g            (option 1)
               x_{k+1} = x_k - (H + l I)^{-1} g         (option 2)
               H <- H + alpha sum (n_i/n) S_i

    [up per client: d floats + the message (+ 1); down: x_k and 4 floats
    (:class:`~.clients.RoundHeader`: round k, alpha, the seed, option 2's flag)]

With ``h0: local`` the first round (k = 0) carries the clients' exact local
Hessians instead of a message (S_i = C(0) = 0 there): one reduction of
d + d(d+1)/2 floats per client.  With ``h0: zero`` every round is as above.

FedNL-LS (``line_search: true``): the clients add their loss sum at x_k
(1 float), and x_{k+1} = x_k - a p with the largest a = gamma^j passing
f(x_k - a p) <= f(x_k) - c a p.g (distributed backtracking, ``ls_steps`` trial
steps per counted round: :func:`.primitives.backtracking`).

FedNL-PP (``participation: tau``): the master keeps, per client, the shifted
vector g_i = (H_i + l_i I) w_i - grad f_i(w_i) at the point w_i the client last
saw, and its l_i; then every iteration

    x_{k+1} = (H + l I)^{-1} g,   g = sum (n_i/n) g_i,  l = sum (n_i/n) l_i
    tau clients S drawn uniformly without replacement (the master's stream);
    i in S:  w_i = x_{k+1},  S_i = C(Hess f_i(w_i) - H_i),  H_i <- H_i + alpha S_i,
             l_i = ||H_i - Hess f_i(w_i)||_F,  g_i = (H_i + l_i I) w_i - grad f_i(w_i)
             sends S_i, l_i, g_i;       H <- H + alpha sum_{i in S} (n_i/n) S_i

    [one subset round to the tau clients; a first full round sets every
    client's g_i, l_i (and H_i for ``h0: local``)]

Defaults (issue 30): FedNL-LS along option 2's direction with alpha = 1 for a
contractive compressor (``alpha: largest``): H + l I >= Hess f(x_k), since
||H - Hess f(x_k)||_2 <= l, so the step is never longer than Newton's and the
Armijo search makes it converge from any start, at lambda = 1/n too, where the
paper's option 1 (floor mu = lambda) with alpha = 1 - sqrt(1 - delta) does not
(docs/algorithms/fednl.md).  ``preset: paper`` is that Algorithm 1: option 1,
``alpha: theory``, no line search.

History columns: ``hessian_gap`` (l, the mean ||Hess f_i(x_k) - H_i||_F, when
option 2 or PP sends it; NaN otherwise) and ``participants``.
Master state (checkpointed): H, the round counter, the PP vectors; worker
state: H_i in ``ctx.state`` (the clients' side: :mod:`.clients`).

References
----------
.. [1] M. Safaryan, R. Islamov, X. Qian, P. Richtarik, "FedNL: Making Newton-type
   methods applicable to federated learning", ICML 2022 (arXiv:2106.02969).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ...errors import UserError
from ...linalg import check_dense_hessian, solve_spd
from ...params import (BOOL, FLOAT, INT, STR, Param, at_least, in_open_closed, positive,
                       preset_param)
from ...runtime import RAGGED
from ...softmax import null_direction, without_null
from .. import primitives as P
from ..base import GUARDED_LOSSES, LINE_SEARCH, Algorithm
from .clients import AheadHeader, PPHeader, RoundHeader, compressor, line_search_on

COMPRESSORS = ("identity", "topk", "randk", "randseqk", "toplek", "rankr")
ALPHA_RULES = ("largest", "theory")

#: the paper's method (Algorithm 1, option 1, alpha = 1 - sqrt(1 - delta)), which
#: does not converge at lambda = 1/n on a9a or phishing (docs/algorithms/fednl.md)
PRESETS = {"paper": {"option": "auto", "alpha": "theory", "line_search": False}}


# -- master side ----------------------------------------------------------
def check_option(x):
    return None if x in ("auto", 1, 2) else f"must be 1, 2 or auto, got {x!r}"


def check_alpha(x):
    if x in ALPHA_RULES:
        return None
    if isinstance(x, str) or isinstance(x, bool):
        return f"must be 'largest', 'theory' or a number in (0, 1], got {x!r}"
    return in_open_closed(0.0, 1.0)(x)


def no_line_search_for_poisson(p):
    """The one-line refusal of loss poisson without FedNL-LS, naming the key that turned
    the line search off: ``participation`` (FedNL-PP, line_search left null), ``preset:
    paper`` (which sets it false) or ``line_search`` itself."""
    why = ("loss poisson needs FedNL-LS (the line search): its curvature exp(x.w) is "
           "unbounded and a unit step can overflow")
    if p.line_search is None and p.participation is not None:
        return f"algorithm.participation: FedNL-PP has no line search, and {why}; leave it unset"
    if getattr(p, "preset", None) == "paper":
        return (f"algorithm.preset: paper turns the line search off, and {why}; drop the "
                "preset or set algorithm.line_search: true")
    return f"algorithm.line_search: {why}; leave line_search on and participation unset"


class FedNL(Algorithm):
    multinomial = True            # model.multiclass: multinomial (the shard interface only)
    name = "fednl"
    #: poisson only with FedNL-LS (:meth:`validate`): the line search rejects a step
    #: whose exp(x.w) overflows, the paper's unit steps do not
    losses = GUARDED_LOSSES
    params = {
        "compressor": Param(STR, "topk", "C on the Hessian differences' upper triangle",
                            choices=COMPRESSORS),
        "k_mult": Param(INT, 8, "K = k_mult * d entries kept (topk, randk, randseqk, "
                        "toplek: at most)", check=at_least(1)),
        "rank": Param(INT, 1, "R, the rank kept by rankr", check=at_least(1)),
        "alpha": Param((int, float, str), "largest", "Hessian learning rate: 'largest' "
                       "(1 contractive, 1/(omega + 1) unbiased), 'theory' (1 - sqrt(1 - "
                       "delta) contractive, 1/(omega + 1) unbiased; delta in Frobenius "
                       "norm) or a number", check=check_alpha),
        "option": Param((int, str), 2, "1: x - [H]_mu^-1 g; 2: x - (H + l I)^-1 g; "
                        "auto: 1, or 2 with participation (FedNL-PP's step)",
                        check=check_option),
        "mu": Param(FLOAT, None, "floor of the projection [H]_mu (default model.lambda)",
                    check=positive, nullable=True),
        "h0": Param(STR, "local", "H_i at the start: the local Hessian at x_0 (one "
                    "d(d+1)/2 round) or zero", choices=("local", "zero")),
        "line_search": Param(BOOL, None, "FedNL-LS: Armijo backtracking along the "
                             "FedNL direction; null: on, except with participation "
                             "(FedNL-PP has none)", nullable=True),
        "ls_c": Param(FLOAT, 0.49, "FedNL-LS Armijo constant c", check=in_open_closed(0, 0.5)),
        "ls_gamma": Param(FLOAT, 0.5, "FedNL-LS backtracking factor gamma",
                          check=lambda x: None if 0 < x < 1 else f"must be in (0, 1), got {x}"),
        "ls_ahead": Param(BOOL, True, "FedNL-LS: the unit step's loss rides with the next "
                          "FedNL round (1 round per accepted iteration instead of 2; the "
                          "same iterates); false: a line-search round every iteration"),
        "ls_steps": LINE_SEARCH["ls_steps"],
        "max_backtracks": LINE_SEARCH["max_backtracks"],
        "participation": Param(INT, None, "FedNL-PP: tau clients per round (default: all, "
                               "FedNL)", check=at_least(1), nullable=True),
        "preset": preset_param(PRESETS),
    }
    presets = PRESETS
    columns = {"hessian_gap": np.float64, "participants": np.int64}

    @classmethod
    def dense_path(cls, params, d):
        return "algorithm.name", "FedNL learns dense d x d Hessians"

    @classmethod
    def validate(cls, params, problem, seed=0):
        p, K = SimpleNamespace(**params), len(problem.sizes)
        check_dense_hessian(problem.d, *cls.dense_path(params, problem.d))
        if (problem.lam if p.mu is None else float(p.mu)) <= 0 and p.option != 2:
            raise UserError("algorithm.mu: defaults to model.lambda, which is 0 here: the "
                            "projection [H]_mu needs a floor > 0, set algorithm.mu")
        if problem.loss == "poisson" and not line_search_on(p):
            raise UserError(no_line_search_for_poisson(p))
        if p.participation is not None:
            if p.participation > K:
                raise UserError(f"algorithm.participation: {p.participation} clients per "
                                f"round, but there are {K} workers")
            if p.line_search is True:
                raise UserError("algorithm.line_search: FedNL-PP (participation) has no "
                                "line search in the paper; use one or the other")
            if p.option == 1:
                raise UserError("algorithm.option: FedNL-PP (participation) steps with "
                                "(H + l I)^-1, option 2; use option: 2 or auto")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        p, prob = self.p, self.prob
        self.alpha = self.learning_rate()
        self.searching = line_search_on(p)      # FedNL-LS
        self.pp = p.participation is not None and p.participation < self.rt.K
        self.option = (2 if self.pp else 1) if p.option == "auto" else int(p.option)
        self.mu = prob.lam if p.mu is None else float(p.mu)
        self.weights = np.asarray(prob.sizes, dtype=np.float64) / prob.n
        self.H = np.zeros((prob.d, prob.d))      # H = sum (n_i/n) H_i
        self.null = null_direction(prob)         # multinomial, free intercept: q
        self.t = 0                               # rounds so far
        self.g_i = np.zeros((self.rt.K, prob.d))  # PP: shifted vectors
        self.l_i = np.zeros(self.rt.K)            # PP: ||H_i - Hess f_i(w_i)||_F
        self.ahead = None                        # LS ahead: the accepted trial's round
        self.verdict = 0.0                       # on the last trial: 1 accepted, 2 not
        self.ls = SimpleNamespace(beta=p.ls_c, alpha_max=1.0, ls_gamma=p.ls_gamma,
                                  ls_steps=p.ls_steps, max_backtracks=p.max_backtracks)

    def learning_rate(self):
        """alpha: a number, or the compressor's class rate ('largest', 'theory')."""
        rule = {"largest": self.comp.alpha_largest, "theory": self.comp.alpha_theory}
        return rule[self.p.alpha]() if self.p.alpha in rule else float(self.p.alpha)

    @property
    def comp(self):
        """The compressor (derived from the parameters: not checkpointed)."""
        p = self.p
        return compressor(p.compressor, self.prob.d, p.k_mult, p.rank, self.seed)

    def header(self, t=None, **more):
        """What a FedNL(-LS) round sends down with x (:class:`RoundHeader`, or with
        ``verdict`` and ``trial`` :class:`AheadHeader`), packed."""
        cls = AheadHeader if more else RoundHeader
        return cls(t=self.t if t is None else t, alpha=self.alpha, seed=self.seed,
                   gap=self.option == 2, **more).pack()

    def pp_header(self, first=False):
        """What a FedNL-PP round sends down with x (:class:`PPHeader`), packed."""
        return PPHeader(t=self.t, alpha=self.alpha, seed=self.seed, first=first).pack()

    def messages_sum(self, replies, start, clients, t=None):
        """sum over clients of (n_i/n) S_i from the replies' messages (from ``start``)."""
        u, comp, t = np.zeros(self.comp.D), self.comp, self.t if t is None else t
        for i, r in zip(clients, replies):
            comp.accumulate(u, r[start:], self.weights[i], k=i, t=t)
        return comp.symmetric(u)

    def direction(self, g, gap):
        """[H]_mu^{-1} g (option 1: eigenvalue clipping) or (H + l I)^{-1} g (option 2);
        H :func:`~distnewton.softmax.without_null` for a multinomial problem with a
        free intercept."""
        H = self.H if self.null is None else without_null(self.H, self.null)
        if self.option == 2:
            return solve_spd(H + gap * np.eye(self.prob.d), g)
        import scipy.linalg as sla
        lam, V = sla.eigh(H)
        return V @ ((V.T @ g) / np.maximum(lam, self.mu))

    def step(self):
        return self.step_pp() if self.pp else self.step_full()

    def step_full(self):
        """One FedNL(-LS) iteration (the first one with h0 local: the exact Hessians)."""
        prob, rt, p = self.prob, self.rt, self.p
        if self.t == 0 and p.h0 == "local":
            fsum, g, gap, S = self.init_round()
        elif self.ahead is not None:               # the accepted trial's round (LS ahead)
            fsum, g, gap, S = self.ahead
            self.ahead = None
        else:
            fsum, g, gap, S = self.gather(self.w, self.t)
        step = self.direction(g, 0.0 if np.isnan(gap) else gap)
        a = 1.0
        if self.searching:
            f = P.global_value(fsum, prob.n, prob.penalty, self.w)
            a = self.line_search(f, g, step) if p.ls_ahead else \
                P.backtracking(rt, prob, self.w, step, f, float(step @ g), self.ls)[0]
            if a == 0.0:
                self.stalled = P.NO_DECREASE
        self.w = self.w - a * step
        self.H = self.H + self.alpha * S
        self.t += 1
        return {"step_size": a, "hessian_gap": gap, "participants": rt.K}

    def init_round(self):
        """h0 local: the exact local Hessians at x_0 and the gradient, one reduction."""
        prob, d = self.prob, self.prob.d
        out = self.rt.round("fednl.init", self.w, self.header(), up=1 + d + self.comp.D)
        g = P.regularise(out[1:1 + d], prob.n, prob.penalty, self.w)
        self.H = self.comp.symmetric(out[1 + d:] / prob.n)
        return out[0], g, (0.0 if self.option == 2 else np.nan), np.zeros_like(self.H)

    def gather(self, x, t, trial=False):
        """The FedNL round at x: (loss sum, g, l or NaN, sum (n_i/n) S_i).  With
        ``ls_ahead`` the round also carries the verdict on the last trial, and
        ``trial`` makes the clients hold back their H_i update until the next."""
        prob, d, rt, p = self.prob, self.prob.d, self.rt, self.p
        if self.searching and p.ls_ahead:
            header = self.header(t, verdict=int(self.verdict), trial=trial)
            self.verdict = 1.0 if trial else 0.0    # a trial is accepted unless rejected
        else:
            header = self.header(t)
        words = self.comp.words()
        head = int(self.searching) + d + (self.option == 2)
        up = [RAGGED] * rt.K if words is None else [head + words] * rt.K
        replies = rt.round("fednl.round", x, header, up=up)
        o = int(self.searching)
        fsum = sum(r[0] for r in replies) if self.searching else 0.0
        g = P.regularise(sum(r[o:o + d] for r in replies), prob.n, prob.penalty, x)
        gap = float(sum(wi * r[o + d] for wi, r in zip(self.weights, replies))) \
            if self.option == 2 else np.nan
        return fsum, g, gap, self.messages_sum(replies, head, range(rt.K), t)

    def line_search(self, f, g, step):
        """FedNL-LS with the unit step tried ahead: the next FedNL round goes to
        x - step at once; its loss decides.  Accepted (the usual case near x*): that
        round is the next iteration's, no line-search round.  Rejected: the clients
        forget it (told in the next round) and the backtracking goes on from gamma
        in line-search rounds.  The iterates are those of the plain line search."""
        prob, slope = self.prob, float(step @ g)
        ahead = self.gather(self.w - step, self.t + 1, trial=True)
        if P.global_value(ahead[0], prob.n, prob.penalty, self.w - step) <= f - self.p.ls_c * slope:
            self.ahead = ahead
            return 1.0
        self.verdict = 2.0
        ls = SimpleNamespace(**{**vars(self.ls), "alpha_max": self.p.ls_gamma,
                                "max_backtracks": self.p.max_backtracks - 1})
        return P.backtracking(self.rt, prob, self.w, step, f, slope, ls)[0]

    def step_pp(self):
        """One FedNL-PP iteration (the first also sets every client's g_i, l_i)."""
        prob, d, rt, p = self.prob, self.prob.d, self.rt, self.p
        if self.t == 0:
            replies = rt.round("fednl.pp", self.w, self.pp_header(first=True),
                               up=[1 + d + (self.comp.D if p.h0 == "local" else 0)] * rt.K)
            for i, r in enumerate(replies):
                self.l_i[i], self.g_i[i] = r[0], r[1:1 + d]
            if p.h0 == "local":
                self.H = self.comp.symmetric(sum(r[1 + d:] for r in replies) / prob.n)
            self.t += 1
        lbar = float(self.weights @ self.l_i)
        H = self.H if self.null is None else without_null(self.H, self.null)
        self.w = solve_spd(H + lbar * np.eye(d), self.weights @ self.g_i)
        chosen = np.sort(self.rng.choice(rt.K, size=p.participation, replace=False))
        words = self.comp.words()
        up = [RAGGED] * len(chosen) if words is None else [1 + d + words] * len(chosen)
        replies = rt.round("fednl.pp", self.w, self.pp_header(), up=up, to=chosen)
        S = self.messages_sum(replies, 1 + d, chosen)
        for i, r in zip(chosen, replies):
            self.l_i[i], self.g_i[i] = r[0], r[1:1 + d]
        self.H = self.H + self.alpha * S
        self.t += 1
        return {"step_size": 1.0, "hessian_gap": lbar, "participants": len(chosen)}

"""FedNL's clients: the Hessian learning on the workers and what a round sends them.

Client i keeps its learned Hessian H_i as the upper triangle h_i (D = d(d+1)/2
entries, ``ctx.state["fednl.H"]``): the compressors (:mod:`.compressors`) act on
it and the learning step touches only the entries a message carries.  A round
(:mod:`.fednl`) brings x and a header (:class:`RoundHeader`, :class:`AheadHeader`,
:class:`PPHeader`); the client computes Hess f_i(x), the message
S_i = C(Hess f_i(x) - H_i) and learns H_i <- H_i + alpha S_i.

Under FedNL-LS with ``ls_ahead`` a round may be a speculative trial (the unit
step sent before the master knows it passes): its update waits in
``ctx.state["fednl.pending"]`` with the RNG state before it, until the next
round's verdict applies it (accepted) or drops it and rewinds the RNG (rejected),
so that the clients' H_i and streams are those of the plain line search.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import numpy as np

from ...runtime import worker_task
from ..control import Control
from .compressors import Compressor


@functools.lru_cache(maxsize=8)
def compressor(name, d, k_mult, rank, seed):
    """The compressor of these parameters (the same object on the master and a client)."""
    return Compressor(name, d, k_mult, rank, seed)


def line_search_on(p):
    """FedNL-LS or not: ``line_search`` as given, or when null (the default) on
    without participation and off with it (FedNL-PP has no line search)."""
    return p.line_search if p.line_search is not None else p.participation is None


# -- what the master sends down with x ------------------------------------
@dataclass(frozen=True)
class Header(Control):
    """The control values of every FedNL round (4 floats with the flag of a subclass)."""

    t: int          # the round k (RandSeqK's offsets derive from it)
    alpha: float    # the Hessian learning rate
    seed: int       # run.seed, the compressor's


@dataclass(frozen=True)
class RoundHeader(Header):
    """``fednl.init`` and ``fednl.round``."""

    gap: bool       # option 2: the clients send l_i = ||Hess f_i(x_k) - H_i||_F


@dataclass(frozen=True)
class AheadHeader(RoundHeader):
    """``fednl.round`` of FedNL-LS with ``ls_ahead`` (6 floats)."""

    verdict: int    # on the last speculative trial: 0 none, 1 accepted, 2 rejected
    trial: bool     # this round is a trial: the H_i update waits for the verdict


@dataclass(frozen=True)
class PPHeader(Header):
    """``fednl.pp``."""

    first: bool     # the first, full round: every client sets H_i, l_i, g_i


# -- worker side ----------------------------------------------------------
# H_i is kept as its upper triangle h_i (D = d(d+1)/2 entries, ``ctx.state``):
# the compressors act on it and the learning step touches only the sent entries.
def _comp(ctx, header):
    p = ctx.params
    return compressor(p.compressor, ctx.shard.d, p.k_mult, p.rank, header.seed)


def _hessian_upper(ctx, comp, w):
    """Upper triangle of Hess f_i(w) = (1/n_i) X^T D X + lambda I (a multinomial
    shard's without its rank-one term: :meth:`~distnewton.softmax.SoftmaxShard.
    plain_hess_upper_sum`)."""
    shard = ctx.shard
    h = getattr(shard, "plain_hess_upper_sum", shard.hess_upper_sum)(w) / shard.n
    h[comp.diagonal] += shard.penalty        # lambda (0 for a free intercept)
    return h


def _learn(ctx, comp, hess, alpha, t, pending=False):
    """S_i = C(Hess f_i - H_i) as a message; H_i <- H_i + alpha S_i (upper triangles).
    ``pending`` (a speculative line-search trial): the update waits for the master's
    verdict, with the RNG state to return to if the trial is rejected."""
    h = ctx.state.setdefault("fednl.H", np.zeros(comp.D))
    rng_before = copy.deepcopy(ctx.rng) if pending else None
    msg = comp.encode_upper(hess - h, ctx.rng, k=ctx.k, t=t)
    if pending:
        ctx.state["fednl.pending"] = {"msg": msg.copy(), "t": t, "rng": rng_before}
    else:
        comp.accumulate(h, msg, alpha, k=ctx.k, t=t)
    return msg


def _resolve(ctx, comp, verdict, alpha):
    """The master's verdict on the last speculative trial: 1 accepted (apply its
    update), 2 rejected (forget it, rewind the RNG)."""
    pend = ctx.state.pop("fednl.pending", None)
    if pend is None:
        return
    if verdict == 1:
        comp.accumulate(ctx.state["fednl.H"], pend["msg"], alpha, k=ctx.k, t=pend["t"])
    else:
        ctx.rng = pend["rng"]


@worker_task("fednl.init")
def _init(ctx, w, header):
    """h0 local: H_i = Hess f_i(x_0); reply [loss sum, grad sum, n_i H_i upper]."""
    shard, comp = ctx.shard, _comp(ctx, RoundHeader.unpack(header))
    h = ctx.state["fednl.H"] = _hessian_upper(ctx, comp, w)
    f, g = shard.loss_grad_sum(w)
    return np.concatenate(([f], g, shard.n * h))


@worker_task("fednl.round")
def _round(ctx, w, header):
    """FedNL round: [loss sum (LS)] + grad sum + [l_i (option 2)] + message."""
    p, shard = ctx.params, ctx.shard
    searching = line_search_on(p)
    ahead = searching and p.ls_ahead           # speculative line search
    head = (AheadHeader if ahead else RoundHeader).unpack(header)
    comp = _comp(ctx, head)
    if ahead:
        _resolve(ctx, comp, head.verdict, head.alpha)
    hess = _hessian_upper(ctx, comp, w)
    gap = comp.frobenius(hess - ctx.state.get("fednl.H", 0.0)) if head.gap else None
    msg = _learn(ctx, comp, hess, head.alpha, head.t, pending=ahead and head.trial)
    f, g = shard.loss_grad_sum(w)
    return np.concatenate(([f] if searching else [], g, [] if gap is None else [gap], msg))


@worker_task("fednl.pp")
def _pp(ctx, w, header):
    """FedNL-PP: [l_i, g_i (d), message]; the first (full) round sets H_i (h0 local:
    n_i H_i's upper triangle is sent) and no message."""
    shard, head = ctx.shard, PPHeader.unpack(header)
    comp = _comp(ctx, head)
    hess = _hessian_upper(ctx, comp, w)
    local = head.first and ctx.params.h0 == "local"
    if head.first:
        ctx.state["fednl.H"] = hess.copy() if local else np.zeros(comp.D)
        msg = np.zeros(0)
    else:
        msg = _learn(ctx, comp, hess, head.alpha, head.t)
    h = ctx.state["fednl.H"]
    l_i = comp.frobenius(h - hess)
    g_i = comp.symmetric(h) @ w + l_i * w - shard.local_grad(w)
    return np.concatenate(([l_i], g_i, shard.n * h if local else msg))

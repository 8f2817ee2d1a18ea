"""The algorithm registry: ``algorithm.name`` -> Algorithm subclass.

Three sources make up :data:`ALGORITHMS` (an :class:`AlgorithmRegistry`, a
read-only mapping name -> Algorithm subclass):

- **built-in**: the classes of :mod:`distnewton.algorithms` (:data:`BUILTINS`);
- **entry points** of the group ``distnewton.algorithms`` in any installed
  distribution (``pyproject.toml``: ``[project.entry-points."distnewton.algorithms"]
  myalgo = "mypkg.algo:MyAlgo"``).  The entry point's name is the algorithm's
  name and must equal the class's ``name``.  Names are read from the package
  metadata on first use; an entry point's module is imported only when its
  algorithm is looked up (``ALGORITHMS[name]``, ``.items()``), once;
- **plugin modules** listed in ``run.plugins`` (or ``--plugin MODULE``): plain
  importable modules, imported by :func:`load_plugins` on every rank while the
  config is resolved (:func:`distnewton.config.resolve`), before any runtime
  builds its worker-task table.  A module registers each algorithm class with
  the :func:`register_algorithm` decorator (an Algorithm subclass that is not
  registered is not an algorithm: a module may hold base classes and helpers)
  and its worker tasks with :func:`~distnewton.runtime.worker_task`.

A plugin module, complete (:mod:`distnewton.plugin` gathers the names a plugin
uses: Algorithm, Param, worker_task, the primitives)::

    import numpy as np
    from distnewton.algorithms import register_algorithm
    from distnewton.plugin import Algorithm, worker_task

    @worker_task("myplugin.grad")
    def _grad(ctx, w):                       # on every worker, on its shard
        f, g = ctx.shard.loss_grad_sum(w)
        return np.concatenate(([f], g))

    @register_algorithm
    class MyGD(Algorithm):
        name = "mygd"
        def step(self):
            out = self.rt.round("myplugin.grad", self.w, up=self.prob.d + 1)
            ...                              # f = out[0] / n, g = out[1:] / n + lam w

Checkpoints store a plugin algorithm as they store a built-in one, attribute
by attribute by type (:mod:`distnewton.checkpoint`), and ``--resume`` imports
the ``run.plugins`` recorded in the file's config again.  An algorithm object
that is part of a built-in one and stored inside it (newton's trust region,
:class:`~.newton.tron.Tron`) is found by :meth:`AlgorithmRegistry.stored`, under
a name no algorithm can take (:data:`PARTS`).

A name defined twice (a plugin or entry point named like a built-in, two
distributions with one name) is a :class:`~distnewton.errors.PluginError`
naming both origins; so is an entry point or module that fails to import (one
line with the exception, exit code 2).  Under MPI every rank imports the same
plugins, and the start-up check (:func:`distnewton.runtime.mpi.check_task_table`)
stops every rank when their worker-task tables differ.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from ..errors import PluginError, UserError
from .base import Algorithm
from .dane import DANE
from .disco import DiSCO
from .fednl import FedNL
from .gd import GD
from .giant import GIANT
from .ist import IST
from .lbfgs import LBFGS
from .localnewton import AdaptiveLocalNewton, LocalNewton
from .localsgd import LocalSGD, ScaledLocalSGD
from .newton import Newton, Tron
from .owlqn import OWLQN
from .ranl import RANL

GROUP = "distnewton.algorithms"
BUILTIN = "built-in"


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (an exception text may span several)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _qualname(cls) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _check_class(obj, where):
    if not (isinstance(obj, type) and issubclass(obj, Algorithm)):
        raise PluginError(f"{where}: expected a subclass of distnewton.algorithms.Algorithm, "
                          f"got {obj!r}")
    if not isinstance(obj.name, str) or not obj.name:
        raise PluginError(f"{where}: {_qualname(obj)} has no `name` (the algorithm.name "
                          "that selects it)")
    return obj


class AlgorithmRegistry(Mapping):
    """name -> Algorithm subclass: built-ins, entry points, registered plugin classes.

    A Mapping: ``ALGORITHMS[name]``, ``name in ALGORITHMS``, ``sorted(ALGORITHMS)``
    and ``len`` need only the names (no entry point is imported); ``[name]``
    imports that entry point's module once; ``.items()``/``.values()`` import all.
    :meth:`origin` says where a name comes from (``distnewton list``).
    """

    def __init__(self, builtins, parts=()):
        self._classes = {cls.name: cls for cls in builtins}
        self._origins = {name: BUILTIN for name in self._classes}
        self._entry_points = None        # name -> EntryPoint, read on first use
        self._parts = {cls.name: cls for cls in parts}     # (their names are taken)
        self._origins.update({name: f"built-in part ({_qualname(cls)})"
                              for name, cls in self._parts.items()})

    # -- discovery -------------------------------------------------------------
    def _eps(self):
        """The group's entry points by name, read from the metadata once."""
        if self._entry_points is None:
            from importlib.metadata import entry_points
            found = {}
            for ep in entry_points(group=GROUP):
                dist = getattr(ep, "dist", None)
                origin = f"entry point {dist.name if dist else '?'}:{ep.name} = {ep.value}"
                clash = self._origins.get(ep.name) or (found[ep.name][1] if ep.name in found
                                                       else None)
                if clash is not None:
                    raise PluginError(f"algorithm {ep.name!r} is defined twice: by the {origin} "
                                      f"and by the {self._describe(ep.name, clash)}")
                found[ep.name] = (ep, origin)
            self._entry_points = {name: ep for name, (ep, _) in found.items()}
            self._origins.update({name: origin for name, (_, origin) in found.items()})
        return self._entry_points

    def _describe(self, name, origin):
        cls = self._classes.get(name)
        return f"{origin} ({_qualname(cls)})" if origin == BUILTIN and cls else origin

    # -- the Mapping -----------------------------------------------------------
    def __getitem__(self, name):
        cls = self._classes.get(name)
        if cls is not None:
            return cls
        ep = self._eps().get(name)
        if ep is None:
            raise KeyError(name)
        where = self._origins[name]
        try:
            obj = ep.load()
        except (Exception, SystemExit) as exc:   # noqa: BLE001 - any failure is the plugin's
            raise PluginError(f"{where} (group {GROUP}): cannot load: {one_line(exc)}") from None
        cls = _check_class(obj, where)
        if cls.name != name:
            raise PluginError(f"{where}: {_qualname(cls)}.name is {cls.name!r}; an entry "
                              "point's name must be its algorithm's name")
        self._classes[name] = cls
        return cls

    def __contains__(self, name):
        eps = self._eps()                # (reads the metadata once: a clash is found here)
        return name in self._classes or name in eps

    def __iter__(self):
        return iter(dict.fromkeys([*self._classes, *self._eps()]))

    def __len__(self):
        return sum(1 for _ in self)

    def origin(self, name) -> str:
        """``built-in``, ``entry point DIST:NAME = MODULE:CLASS`` or ``module M`` (a
        part's name: ``built-in part (MODULE:CLASS)``)."""
        self._eps()
        return self._origins[name]

    def stored(self, name):
        """The class of an algorithm object a checkpoint stored under ``name``: a
        selectable algorithm (``self[name]``), or a part of a built-in one."""
        part = self._parts.get(name)
        return self[name] if part is None else part

    # -- plugin modules ----------------------------------------------------------
    def register(self, cls):
        """Add ``cls`` (an Algorithm subclass with a ``name``) under its name."""
        _check_class(cls, "register_algorithm")
        name, origin = cls.name, f"module {cls.__module__}"
        ep = self._eps().get(name)
        if ep is not None and ep.value.replace(" ", "") == _qualname(cls):
            self._classes[name] = cls    # the entry point's own module registering it
            return cls
        known = self._origins.get(name)
        old = self._classes.get(name)
        if known is not None and not (known == origin and old is not None
                                      and _qualname(old) == _qualname(cls)):
            raise PluginError(f"algorithm {name!r} is defined twice: by {_qualname(cls)} "
                              f"({origin}) and by the {self._describe(name, known)}")
        self._classes[name], self._origins[name] = cls, origin   # (a re-import replaces)
        return cls


#: the built-in algorithms, selectable by their ``name``
BUILTINS = (Newton, GD, GIANT, LocalNewton, AdaptiveLocalNewton, LBFGS, LocalSGD, RANL, IST,
            ScaledLocalSGD, FedNL, DiSCO, DANE, OWLQN)
#: algorithm objects that live inside a built-in one (and in its checkpoint)
PARTS = (Tron,)

ALGORITHMS = AlgorithmRegistry(BUILTINS, PARTS)


def register_algorithm(cls):
    """Class decorator: make ``cls`` selectable as ``algorithm.name: <cls.name>``."""
    return ALGORITHMS.register(cls)


def load_plugins(modules, where="run.plugins"):
    """Import the plugin modules (in order; a module already imported is not re-run).

    Called by :func:`distnewton.config.resolve` on every rank, so that the
    modules' worker tasks exist before a runtime builds its task table.  A
    module that cannot be imported (or raises while it registers) is a
    :class:`PluginError`: one line naming the module and the exception; so is
    one that calls ``sys.exit`` (SystemExit, a BaseException).  A
    KeyboardInterrupt is not caught: it is the user's Ctrl-C, whatever raised it.
    """
    for name in modules:
        if not isinstance(name, str) or not name.strip():
            raise UserError(f"{where}: expected importable module names, got {name!r}")
        try:
            importlib.import_module(name)
        except UserError as exc:
            raise PluginError(f"{where}: {name}: {exc}") from None
        except SystemExit as exc:       # sys.exit() on import: never a silent exit 0
            raise PluginError(f"{where}: importing {name!r} called sys.exit({exc.code!r}) "
                              "(a plugin module must not exit)") from None
        except Exception as exc:        # noqa: BLE001 - ImportError, SyntaxError, its own
            raise PluginError(f"{where}: cannot import {name!r} ({one_line(exc)})") from None

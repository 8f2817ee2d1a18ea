"""FedNL (Safaryan et al., ICML 2022): :mod:`.fednl` (the master), :mod:`.clients`
(the Hessian learning on the workers) and the matrix :mod:`.compressors`."""

from .fednl import FedNL

__all__ = ["FedNL"]

"""FedNL (Safaryan et al., ICML 2022): :mod:`.fednl` and its matrix :mod:`.compressors`."""

from .fednl import FedNL

__all__ = ["FedNL"]

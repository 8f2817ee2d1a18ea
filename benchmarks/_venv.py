"""A benchmark contender in a virtual environment of its own (``_liblinear_venv.py``,
``_spark_lr.py``): make it with pip, ask a package's version there."""

from __future__ import annotations

import os
import subprocess
import sys


def make(venv, packages):
    """``python -m venv VENV`` and ``pip install PACKAGES`` there (PyPI)."""
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q", *packages],
                   check=True)


def version(python, package):
    """``package``'s version under the interpreter ``python``, or None when either is missing."""
    if not os.path.exists(python):
        return None
    proc = subprocess.run([python, "-c", "import importlib.metadata as m; "
                           f"print(m.version({package!r}))"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None

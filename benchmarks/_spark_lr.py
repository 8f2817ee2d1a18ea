"""Spark ML logistic regression on a LIBSVM file: the Spark contender of ``e2e_bench.py``.

Runs in its own virtual environment (``VENV``: pyspark and numpy from PyPI, made by
``python benchmarks/e2e_bench.py --setup-spark``; Spark needs Java 17 or newer on
PATH), as a script, so that the caller times the whole process (interpreter, JVM
start, reading, fitting, writing the weights):

    VENV/bin/python _spark_lr.py FILE OUT.npz --features D --reg LAMBDA --tol T
                                 --max-iter M [--threads 2] [--memory 8g] [--tmp DIR]

The problem is distnewton's: mean log-loss + reg/2 |w|^2, no intercept
(``regParam = reg``, ``elasticNetParam 0``, ``fitIntercept False``,
``standardization False``), labels > 0 mapped to 1 and the others to 0.  OUT.npz
gets the weights ``w`` (scoring label 1) and the seconds of the steps as Spark saw
them: ``session`` (JVM start), ``fit`` (reading the text, which Spark defers to the
fit, and L-BFGS), ``iterations``.
"""

from __future__ import annotations

import argparse
import os
import time

import _venv

VENV = os.path.join(os.path.expanduser("~"), ".cache", "distnewton-bench", "spark-venv")
PYTHON = os.path.join(VENV, "bin", "python")
PACKAGES = ("pyspark", "numpy")


def setup(venv=VENV):
    """Make the virtual environment with pyspark (PyPI, via pip)."""
    _venv.make(venv, PACKAGES)


def version(python=PYTHON):
    """pyspark's version in that environment, or None when it is not there."""
    return _venv.version(python, "pyspark")


def _main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--features", type=int, required=True)
    ap.add_argument("--reg", type=float, required=True)
    ap.add_argument("--tol", type=float, default=1e-12)
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory", default="8g")
    ap.add_argument("--tmp", default=None)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    import numpy as np
    from pyspark.ml.classification import LogisticRegression
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    tmp = a.tmp or os.getcwd()
    spark = (SparkSession.builder.master(f"local[{a.threads}]").appName("e2e_bench")
             .config("spark.driver.memory", a.memory)
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.local.dir", tmp)
             .config("spark.sql.warehouse.dir", os.path.join(tmp, "spark-warehouse"))
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    t1 = time.perf_counter()
    df = (spark.read.format("libsvm").option("numFeatures", a.features).load(a.data)
          .withColumn("label", F.when(F.col("label") > 0, 1.0).otherwise(0.0)))
    lr = LogisticRegression(regParam=a.reg, elasticNetParam=0.0, fitIntercept=False,
                            standardization=False, tol=a.tol, maxIter=a.max_iter,
                            family="binomial")
    model = lr.fit(df)
    t2 = time.perf_counter()
    w = model.coefficients.toArray()
    iters = model.summary.totalIterations
    np.savez(a.out, w=w, session=t1 - t0, fit=t2 - t1, iterations=iters)
    spark.stop()


if __name__ == "__main__":
    _main()

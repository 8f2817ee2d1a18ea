"""What the tests share, kept apart from the tests themselves: launching real jobs
(``launch``: ``distnewton`` and ``mpiexec`` in subprocesses, the environment a small
machine needs, reading result files back), independent numpy and scikit-learn
references and the synthetic problems they are computed on (``references``), an
algorithm and its sim runtime built by hand (``inprocess``), the stop-and-resume
helpers (``checkpoints``), the trained-model, scaled Local SGD and plugin tests'
helpers (``models``, ``scaled_localsgd``, ``plugin_fixture``, which also writes the
test plugin), the one-node SLURM cluster of the ``slurm`` tests (``slurm_cluster``),
and the script the subset-round tests run under ``mpiexec`` (``subset_rounds_job``).
Test modules import from here (``from support.launch import cli``: pytest puts
tests/ on ``sys.path``), never from one another (tests/test_imports.py checks
it); the shared fixtures are in tests/conftest.py.
"""

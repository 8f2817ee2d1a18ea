"""What the tests share, kept apart from the tests themselves: launching real jobs
(``launch``: ``distnewton`` and ``mpiexec`` in subprocesses, the environment a small
machine needs, reading result files back), the one-node SLURM cluster the ``slurm``
tests start (``slurm_cluster``), the algorithm plugin the plugin tests write into a
folder (``plugin_fixture``), and the script run under ``mpiexec`` by the subset-round
tests (``subset_rounds_job``).  Test modules import from here (``from support.launch
import cli``: pytest puts tests/ on ``sys.path``).
"""

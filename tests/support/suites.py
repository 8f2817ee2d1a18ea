"""Which tests a plain ``python -m pytest`` runs: the fast suite, the full one, or the rest.

``--suite fast`` (the default when nothing is selected on the command line) runs
every test not marked ``slow`` plus those marked ``smoke``: the in-process tests
and one real job per feature that needs a process, an ``mpiexec`` job or the
SLURM cluster (the table in docs/tests.md, checked by tests/test_suites.py).
``--suite full`` runs everything; ``--suite rest`` runs what the fast suite
leaves out, so that CI's two passes (``fast``, then ``rest``) run every test
once; ``--suite openmpi`` is what CI runs again under Open MPI
(:data:`OPENMPI_MODULES`).

A run that selects tests itself (``-m``, ``-k``, a file or a test id on the
command line) gets the full suite among them unless ``--suite`` is given: a
developer naming ``tests/test_slurm_launcher.py`` means it.
"""

from __future__ import annotations

import pytest

SUITES = ("fast", "full", "rest", "openmpi")

#: the slow tests the fast suite runs too, by feature: one real process, ``mpiexec``
#: or SLURM job each (docs/tests.md shows this table; tests/test_suites.py checks that
#: every id is collected and that the table and this dict agree)
SMOKE = {
    "the README's first command (quickstart) under mpiexec -n 3 and -n 5":
        "tests/test_cli.py::test_quickstart_runs_under_mpiexec_3_and_5",
    "MPI backend: the sim backend's iterates under mpiexec":
        "tests/test_runs.py::test_sim_and_mpi_give_the_same_iterates",
    "K logical workers over fewer ranks":
        "tests/test_logical_workers.py::test_k_logical_workers_on_two_ranks_equal_k_simulated"
        "[giant-False]",
    "subset rounds (a sub-communicator of the workers)":
        "tests/test_subset_rounds.py::test_subset_rounds_mpi_equal_sim",
    "an exception on one rank ends the whole job":
        "tests/test_cli.py::test_an_exception_on_any_rank_ends_the_whole_job[1-round]",
    "a worker killed by SIGKILL ends the job":
        "tests/test_reliability.py::test_a_worker_killed_with_sigkill_ends_the_job",
    "a stop signal through the launcher, checkpoint, resume":
        "tests/test_checkpoint.py::test_the_launcher_forwards_the_stop_signal",
    "stop then resume equals an uninterrupted run":
        "tests/test_checkpoint.py::test_stop_then_resume_equals_an_uninterrupted_run[giant-sim]",
    "Ctrl-C on a terminal under mpiexec keeps the work":
        "tests/test_terminal.py::test_ctrl_c_stops_with_a_checkpoint_and_resume_completes_it"
        "[mpi]",
    "the progress bar under mpiexec in a terminal":
        "tests/test_terminal.py::test_the_bar_shows_under_mpiexec_in_a_terminal",
    "--require-converged: exit 5 under mpiexec":
        "tests/test_cli.py::test_require_converged_exits_5_after_writing_the_result"
        "[max_rounds-how0]",
    "parallel ingestion (every rank reads its byte range)":
        "tests/test_ingest_parallel.py::test_the_parallel_path_gives_the_rank_0_paths_run"
        "[2-data3-model3-run3]",
    "the parsed-data cache, cold and warm on other rank counts":
        "tests/test_cache.py::test_cold_and_warm_runs_on_other_rank_counts_give_the_uncached_run",
    "row and class weights sharded under mpiexec":
        "tests/test_weights.py::test_weights_are_sharded_under_mpiexec",
    "one-vs-rest multiclass under mpiexec":
        "tests/test_multiclass.py::test_mpiexec_gives_the_sim_models_and_counts",
    "multinomial (softmax) under mpiexec":
        "tests/test_multinomial_model.py::test_mpiexec_gives_the_sim_model_and_counts",
    "run --fetch under mpiexec: one download":
        "tests/test_run_fetch.py::test_fetch_under_mpiexec_downloads_one_copy",
    "a shipped config with a registered data set":
        "tests/test_configs.py::test_every_config_resolves_and_runs[configs/a9a/giant.yaml]",
    "files follow the umask (cache pieces of several ranks, result)":
        "tests/test_filemode.py::test_cache_pieces_of_several_ranks_and_the_result_follow_the_umask",
    "a failed final write keeps model and history (fallback) under mpiexec":
        "tests/test_write_fallback.py::test_a_failure_in_any_part_of_the_write_keeps_model_and_"
        "history[write-mpi]",
    "an algorithm plugin under mpiexec":
        "tests/test_plugins.py::test_plugin_mpi_equals_sim",
    "the Python API on every rank of an MPI job":
        "tests/test_api.py::test_solve_on_every_rank_of_an_mpi_job_matches_the_cli",
    "input formats under mpiexec (Parquet row groups read by every rank)":
        "tests/test_formats.py::"
        "test_under_mpiexec_every_rank_reads_its_rows_and_the_run_equals_sim[parquet-False]",
    "an L1 term (owlqn) under mpiexec":
        "tests/test_l1.py::test_owlqn_under_mpiexec_equals_sim_and_records_l1",
    "the L2-loss SVM (squared_hinge) under mpiexec":
        "tests/test_squared_hinge.py::test_mpiexec_run_reaches_the_scipy_optimum",
    "DiSCO's preconditioner on one worker (subset rounds) under mpiexec":
        "tests/test_disco.py::test_mpi_run_equals_the_sim_run[worker]",
    "a held-out validation fraction and early stopping under mpiexec":
        "tests/test_validation.py::test_mpiexec_3_equals_numpy_and_sim[fraction]",
    "run, then predict and evaluate from the command line":
        "tests/test_model.py::test_cli_run_then_predict",
    "report's rows against the files":
        "tests/test_report.py::test_report_rows_and_rounds_to_target_match_the_files",
    "plot's options through the command line":
        "tests/test_plot_axes.py::test_the_options_through_the_cli",
    "the adversarial corpus under mpiexec: resume of changed data":
        "tests/test_corpus_resume.py::test_resume[resume/mpi data replaced, parallel ingestion]",
    "the adversarial corpus under mpiexec: a claimed output path":
        "tests/test_corpus_outputs.py::test_outputs[outputs/mpi: a claimed path is refused on "
        "every rank]",
    "the adversarial corpus under mpiexec: a FIFO as input":
        "tests/test_corpus_hangs.py::test_hangs[hangs/mpi: data.train is a FIFO]",
    "a benchmark script's smoke mode":
        "tests/test_benchmarks.py::test_benchmark_smoke_mode_runs_and_prints_its_table"
        "[hvp_bench]",
    "SLURM: sbatch picks a launcher and reaches the optimum":
        "tests/test_slurm_launcher.py::test_run_sbatch_picks_a_working_launcher_and_reaches_the_sklearn_"
        "optimum",
}


SMOKE_IDS = frozenset(SMOKE.values())

#: modules whose every ``mpi``/``slurm`` test is about what MPI implementations and
#: launchers do differently (start-up and world detection, signals, aborts, output
#: forwarding, PMI under srun, large and uneven collectives, files written by several
#: ranks): ``--suite openmpi`` runs them all; elsewhere only the ``smoke`` tests and
#: the corpus's ``mpiexec`` cases (the per-algorithm sim == MPI tests run the same
#: collectives as the smoke ones, and run under MPICH)
OPENMPI_MODULES = frozenset(f"tests/{m}.py" for m in (
    "test_cli", "test_reliability", "test_ingest_parallel", "test_subset_rounds",
    "test_terminal", "test_slurm_launcher", "test_slurm_signals", "test_slurm_sweep",
    "test_run_fetch", "test_filemode", "test_write_fallback",
    "test_api", "test_datasets", "test_cache"))


def pytest_addoption(parser):
    parser.addoption(
        "--suite", choices=SUITES, default=None,
        help="fast: not `slow`, plus `smoke` (the default of a bare `pytest`); full: "
             "every test; rest: the tests fast leaves out; openmpi: the MPI and SLURM "
             "tests CI reruns under Open MPI (docs/tests.md)")


def chosen(config) -> str:
    """The suite of this session: ``--suite``, else ``full`` when the command line
    selects tests itself, else ``fast``."""
    if config.getoption("suite"):
        return config.getoption("suite")
    explicit = (config.getoption("markexpr") or config.getoption("keyword")
                or config.args_source == pytest.Config.ArgsSource.ARGS)
    return "full" if explicit else "fast"


def in_openmpi(item) -> bool:
    """The Open MPI pass's rule (:data:`OPENMPI_MODULES`)."""
    if not (item.get_closest_marker("mpi") or item.get_closest_marker("slurm")):
        return False
    return (item.nodeid.split("::")[0] in OPENMPI_MODULES
            or item.get_closest_marker("smoke") is not None
            or item.get_closest_marker("corpus") is not None)


def in_fast(item) -> bool:
    """The fast suite's rule: not ``slow``, or ``smoke``."""
    return (item.get_closest_marker("slow") is None
            or item.get_closest_marker("smoke") is not None)


def pytest_itemcollected(item):
    """The ``smoke`` marker on the tests :data:`SMOKE` names (as each is collected,
    before ``-m`` selects)."""
    if item.nodeid in SMOKE_IDS:
        item.add_marker(pytest.mark.smoke)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Deselect (reported as such) what the session's suite leaves out; last, after
    conftest.py has marked every ``mpi``, ``slurm`` and ``data`` test ``slow``."""
    suite = chosen(config)
    config.stash[SUITE_KEY] = (suite, len(items))
    if suite == "full":
        return
    keep = {"fast": in_fast, "rest": lambda item: not in_fast(item),
            "openmpi": in_openmpi}[suite]
    dropped = [item for item in items if not keep(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if keep(item)]


def pytest_report_collectionfinish(config, start_path, items):
    """The suite in the report's header, so that a log says what it ran."""
    suite, total = config.stash.get(SUITE_KEY, ("full", len(items)))
    more = {"fast": "; `--suite full` runs every test (docs/tests.md)",
            "rest": ": what the fast suite leaves out", "full": "",
            "openmpi": ": the MPI and SLURM tests CI reruns under Open MPI"}[suite]
    return f"suite: {suite}, {len(items)} of {total} collected tests{more}"


SUITE_KEY = pytest.StashKey[tuple]()

"""Commands for results and data sets: ``report``, ``plot``, ``recover``,
``predict``, ``evaluate``, ``export``, ``data list|fetch|split|cache``.

Registered on the main group by :mod:`distnewton.cli` (``register``).  Heavy
imports (h5py, matplotlib) happen inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import click

from .errors import UserError

TARGET_HELP = ("a training loss (0.3234 or loss:0.3234) or a relative suboptimality "
               "(rel:1e-6, i.e. (f - f*)/|f*| <= 1e-6)")


def _f_star(value):
    """--f-star: a finite nonzero number (it divides the suboptimality)."""
    if value is None:
        return None
    from .io.validate import check_f_star
    return check_f_star(value, "--f-star")


@click.command()
@click.argument("results", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.option("--target", help=TARGET_HELP)
@click.option("--f-star", "f_star", type=float, callback=lambda c, p, v: _f_star(v),
              help="optimal value, finite and nonzero (default: from the file, the f* cache, or computed once "
                   "with newton and cached)")
@click.option("--no-compute", is_flag=True, help="never run newton to find f*")
def report(results, fmt, target, f_star, no_compute):
    """One row per result file (RESULTS: .h5 files or folders of them)."""
    from .report import collect, parse_target, render
    tgt = parse_target(target)
    _, rows = collect(results, f_star=f_star, target=tgt, compute=not no_compute)
    click.echo(render(rows, fmt, tgt), nl=False)


@click.command()
@click.argument("results", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help="image file (.png, .pdf, .svg)")
@click.option("--kind", type=click.Choice(["curves", "bars"]), default="curves",
              show_default=True, help="suboptimality curves, or rounds/time-to-target bars")
@click.option("--x", "x", type=click.Choice(["rounds", "time", "bytes", "modelled"]),
              default="rounds", show_default=True,
              help="x axis of the curves (bars: modelled = use modelled time)")
@click.option("--target", help=TARGET_HELP + "; required by --kind bars")
@click.option("--f-star", "f_star", type=float, callback=lambda c, p, v: _f_star(v),
              help="optimal value (as for report)")
@click.option("--no-compute", is_flag=True, help="never run newton to find f*")
@click.option("--title", help="figure title")
@click.option("--logx/--no-logx", default=None,
              help="log x axis (symmetric log: x = 0, the start, stays); default: log, "
                   "with a note, when the runs' x ranges differ more than 30-fold")
@click.option("--xlim", metavar="LO:HI",
              help="x axis limits, either end may be left out (0:50, :200, 10:); "
                   "the y axis then fits the points inside")
@click.option("--ylim", metavar="LO:HI",
              help="y axis limits (relative suboptimality, log: > 0), e.g. 1e-10:1")
@click.option("--y", "y", type=click.Choice(["subopt", "validation_loss", "test_loss"]),
              default="subopt", show_default=True,
              help="y axis of the curves: relative suboptimality (log), or the history's "
                   "validation_loss (data.validation, what run.early_stopping watches) or "
                   "test_loss (data.test), linear, the lowest point starred; no f* needed")
def plot(results, output, kind, x, target, f_star, no_compute, title, logx, xlim, ylim, y):
    """Plot result files: suboptimality (log) against rounds/time/bytes, or bars.

    \b
    Examples:
      distnewton plot results/*.h5 -o fig.png
      distnewton plot gd.h5 giant.h5 newton.h5 -o fig.png --logx
      distnewton plot results/*.h5 -o zoom.png --xlim 0:50 --ylim 1e-12:1
      distnewton plot results/*.h5 -o bars.png --kind bars --target rel:1e-6
      distnewton plot results/*.h5 -o val.png --y validation_loss
    """
    from .plotaxes import parse_limits
    from .report import collect, parse_target
    tgt = parse_target(target)
    limits = (parse_limits(xlim, "--xlim"),
              parse_limits(ylim, "--ylim", positive=y == "subopt"))
    if kind == "bars" and tgt is None:
        raise UserError("--kind bars: needs --target (e.g. --target rel:1e-6)")
    if kind == "bars" and (logx or xlim or ylim):
        raise UserError("--logx, --xlim, --ylim: only for --kind curves")
    if kind == "bars" and y != "subopt":
        raise UserError(f"--y {y}: only for --kind curves")
    from .plot import _pyplot, plot_bars, plot_curves
    _pyplot()                                   # fail early without matplotlib
    runs, _ = collect(results, f_star=f_star, target=tgt,     # a loss column needs no f*
                      compute=not no_compute and y == "subopt")
    if kind == "bars":
        plot_bars(runs, output, tgt, title,
                  time="modelled_time" if x == "modelled" else "wall_time")
    else:
        for note in plot_curves(runs, output, x, title, logx, *limits, y=y):
            click.echo(f"distnewton: note: {note}", err=True)
    click.echo(output)


@click.command()
@click.argument("fallback")
@click.option("-o", "--output", help="result file to write (default: the one the run asked for)")
@click.option("--overwrite", is_flag=True, help="replace an existing result file")
def recover(fallback, output, overwrite):
    """Write the HDF5 result kept in FALLBACK (a .fallback.npz left by a failed write).

    The file holds the model, the history and the attributes; the recovered
    result has no /checkpoint.  report and plot also read FALLBACK as it is.
    """
    from .errors import echo
    from .io.fallback import recover as write_recovered
    echo(f"{fallback} -> {write_recovered(fallback, output, overwrite)}", err=False)


@click.command()
@click.argument("result")
@click.argument("data")
@click.option("-o", "--output", help="write the predictions here (default: stdout)")
@click.option("--proba", is_flag=True,
              help="class probabilities (logistic): one column per class, in the "
                   "order of the training labels (the -1 class first)")
@click.option("--decision", is_flag=True,
              help="decision values x.w (+ intercept) instead of labels: one column "
                   "(> 0: the second class), one per class for one-vs-rest, in the "
                   "order of the training labels")
def predict(result, data, output, proba, decision):
    """Predictions of the model in RESULT for the rows of DATA, one line per row.

    Labels are the training labels (through the stored label map); ridge
    prints x.w; poisson the mean exp(x.w) (--decision: x.w, the log mean).  --decision prints the decision values (scikit-learn's
    decision_function, LIBLINEAR's decision values), --proba the class
    probabilities.  When DATA's labels are known to the model, accuracy,
    log-loss and AUC (logistic) or MSE and R^2 (ridge) go to stderr.

    \b
    Examples:
      distnewton predict results/a9a-giant.h5 a9a.t -o labels.txt
      distnewton predict results/a9a-giant.h5 a9a.t --decision -o scores.txt
    """
    from .model import PROBA_WHY, evaluate as score, load_model, prediction_lines
    if proba and decision:
        raise UserError("--proba, --decision: choose one")
    model = load_model(result)
    _warn(model)
    if proba and model.loss != "logistic":
        why = PROBA_WHY.get(model.loss, "predictions are x.w")
        raise UserError(f"--proba: only for logistic models ({result} is {model.loss}: {why})")
    X, _, found, why = score(model, data, strict=False)
    text = "\n".join(prediction_lines(model, X, proba, decision)) + "\n"
    if output:
        try:
            with open(output, "w", encoding="ascii") as fh:
                fh.write(text)
        except OSError as exc:
            raise UserError(f"{output}: cannot write ({exc.strerror})") from None
    else:
        click.echo(text, nl=False)
    if found is None:
        click.echo(f"{data}: no metrics: {why}", err=True)
    else:
        click.echo(f"{data}: " + ", ".join(f"{k} {v}" if isinstance(v, int) else f"{k} {v:.6g}"
                                         for k, v in found.items()), err=True)


@click.command()
@click.argument("result")
@click.argument("data")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def evaluate(result, data, fmt):
    """Metrics of the model in RESULT on the labelled rows of DATA.

    Logistic: accuracy, log_loss, auc; squared_hinge: accuracy,
    squared_hinge, auc; ridge: mse, r2; poisson: poisson_deviance (scikit-learn's
    mean_poisson_deviance), d2, mse of exp(x.w) (and n_samples).  A
    label the training label map does not know is an error (exit 2).
    """
    from .model import evaluate as score, format_metrics, load_model
    model = load_model(result)
    _warn(model)
    found = score(model, data, strict=True)[2]
    if fmt == "json":
        import json
        import math
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                 for k, v in found.items()}
        click.echo(json.dumps({"result": result, "data": data, "loss": model.loss, **clean}))
    else:
        click.echo(format_metrics(found))


@click.command()
@click.argument("result")
@click.option("-o", "--output", required=True, help="file to write")
@click.option("--format", "fmt", type=click.Choice(["liblinear", "npz", "json"]),
              default="liblinear", show_default=True)
@click.option("--overwrite", is_flag=True, help="replace an existing file")
def export(result, output, fmt, overwrite):
    """Write the model in RESULT for another tool.

    liblinear: LIBLINEAR's model file (L2R_LR for logistic, L2R_L2LOSS_SVC for
    squared_hinge, L2R_L2LOSS_SVR with p = 0 for ridge; bias 1 with an
    intercept; LIBLINEAR has no Poisson regression: poisson models are refused).  npz, json: w, intercept, labels, objective, lam, fit_intercept,
    regularize_intercept, n_features.
    """
    from .export import export as write
    from .model import load_model
    model = load_model(result)
    _warn(model)
    click.echo(write(model, output, fmt, overwrite))


def _warn(model):
    """A model of a run that diverged or was stopped is used, with a warning on stderr."""
    from .model import status_warning
    line = status_warning(model)
    if line:
        click.echo(line, err=True)


@click.command("list")
def data_list():
    """Registered data sets (name, size, where it is cached)."""
    from .data.registry import REGISTRY, data_dir
    folder = data_dir()
    click.echo(f"{'name':<15} {'n':>8} {'d':>8}  {'sha256':<9} {'cached':<6} url")
    for e in REGISTRY.values():
        cached = "yes" if (folder / e.file).exists() else "-"
        sha = "known" if e.sha256 else "unknown"
        click.echo(f"{e.name:<15} {e.n_samples:>8} {e.n_features:>8}  {sha:<9} {cached:<6} "
                   f"{e.url}")
    click.echo(f"\ncache folder: {folder} (DISTNEWTON_DATA)")


@click.command("fetch")
@click.argument("names", nargs=-1, required=True)
@click.option("--dir", "folder", help="where to store the files (default: the cache folder, "
              "$DISTNEWTON_DATA or ~/.cache/distnewton/data)")
@click.option("--mirror", help="a folder or URL holding the same file names (a9a.bz2, ...) "
              "instead of the official site")
@click.option("--force", is_flag=True, help="download again even if cached")
def data_fetch(names, folder, mirror, force):
    """Download registered data sets, verify their sha256, keep them cached."""
    from .data.fetch import fetch
    for name in names:
        got = fetch(name, folder=folder, mirror=mirror, force=force)
        how = "verified" if got.verified else "NOT verified (no registered sha256)"
        where = "already cached" if got.source == "cache" else f"from {got.source}"
        click.echo(f"{name}: {got.path} ({where}; sha256 {how})")


@click.command("split")
@click.argument("path")
@click.option("--parts", type=int, required=True, help="number of shards (= workers)")
@click.option("--out", required=True, help="output folder")
@click.option("--partition", type=click.Choice(["iid", "contiguous", "label_skew"]),
              default="iid", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="partition seed")
@click.option("--alpha", type=float, default=0.5, show_default=True,
              help="Dirichlet alpha of label_skew")
@click.option("--n-features", type=int, help="feature count (default: largest index)")
@click.option("--zero-based", is_flag=True, help="indices start at 0")
@click.option("--overwrite", is_flag=True, help="replace an existing split in --out")
@click.option("--cache", default="auto", show_default=True,
              help="the binary cache of the parsed file, as data.cache: auto, off or a folder")
def data_split(path, parts, out, partition, seed, alpha, n_features, zero_based, overwrite,
               cache):
    """Split a LIBSVM file (or registered name) into one HDF5 shard per worker.

    Use the folder with `data.shards: OUT` in a config: worker k reads only
    its own part-k file.  Under `mpiexec -n P` every rank reads its share of
    the file and writes some of the parts.
    """
    from .data.registry import resolve_path
    from .runtime.mpi import launched_size
    if parts < 1:
        raise UserError(f"--parts: must be >= 1, got {parts}")
    source = resolve_path(path, "PATH")
    if (launched_size() or 1) > 1:
        from .split_parallel import split_mpi as split
    else:
        from .data.split import split_file as split
    m = split(source, parts, out, partition=partition, seed=seed, alpha=alpha,
              n_features=n_features, zero_based=zero_based, overwrite=overwrite, cache=cache)
    if m is None:                              # the other ranks of an mpiexec job
        return
    click.echo(f"{out}: {m['n_parts']} parts of {m['n_samples']} x {m['n_features']} "
               f"(rows per part {min(m['sizes'])}..{max(m['sizes'])}, {partition})")


@click.group("cache")
def data_cache():
    """The binary cache of parsed text files (data.cache): list, clear."""


def _cache_root(folder):
    from .data.cache import default_root
    return default_root() if folder is None else folder


@data_cache.command("list")
@click.option("--dir", "folder", help="the cache folder (default: $DISTNEWTON_CACHE/parsed "
              "or ~/.cache/distnewton/parsed; a run's data.cache: FOLDER)")
def cache_list(folder):
    """Entries: source, rows x columns, size, status (ok, stale, missing, incomplete)."""
    from .data.cache import entries, status
    from .progress import human_bytes
    root = _cache_root(folder)
    found = entries(root)
    for e in found:
        shape = "" if e.get("incomplete") else f"{e['n_rows']} x {e['n_cols']}"
        opts = "" if e.get("incomplete") else (" zero_based" if e["zero_based"] else "") + (
            f" n_features={e['n_features']}" if e["n_features"] is not None else "")
        click.echo(f"{status(e):<10} {human_bytes(e['bytes']):>9}  {shape:<18} "
                   f"{e.get('source', e['folder'].name)}{opts}")
    total = sum(e["bytes"] for e in found)
    click.echo(f"{len(found)} entries, {human_bytes(total)} in {root}")


@data_cache.command("clear")
@click.option("--dir", "folder", help="the cache folder (default as for `list`)")
@click.option("--unused", is_flag=True, help="only entries that are not ok (stale, missing "
              "source, incomplete)")
def cache_clear(folder, unused):
    """Remove the cache's entries (all, or with --unused those no run would read)."""
    from .data.cache import clear
    from .progress import human_bytes
    root = _cache_root(folder)
    count, freed = clear(root, only_unused=unused)
    click.echo(f"removed {count} entries ({human_bytes(freed)}) from {root}")


def register(main, data):
    main.add_command(report)
    main.add_command(plot)
    main.add_command(recover)
    main.add_command(predict)
    main.add_command(evaluate)
    main.add_command(export)
    data.add_command(data_list)
    data.add_command(data_fetch)
    data.add_command(data_split)
    data.add_command(data_cache)

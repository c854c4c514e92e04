"""The ``stainlib`` command line: it parses arguments and calls the library (book chapters 4, 6 and 7).

    stainlib synth     --out data/synthetic                       write the offline MVTec-like dataset
    stainlib download  --out data/mvtec_ad --categories bottle    fetch the real MVTec AD (needs internet)
    stainlib train     --data-root DIR --category NAME --model aesc --corruption stain --epochs N --out runs
    stainlib evaluate  RUN_DIR --map residual|uncertainty|combined [--data-root DIR] [--unfinished]
    stainlib train ... --keep-steps 125 250 500                   also keep the weights at those optimiser steps
    stainlib evaluate  RUN_DIR --at-step 250                      score that snapshot (into RUN_DIR/steps/)
    stainlib predict   RUN_DIR PATH... --out DIR [--map M] [--threshold auto|VALUE] [--fpr 0.01]
    stainlib sweep     --grid claims|table1|table2|table3 --data-root DIR --categories ... --epochs N --out results
    stainlib table     results --table I|II|III

The names are the library's: the fields of :class:`stainlib.spec.RunSpec` (``--data-root``, ``--image-size``,
``--samples-per-epoch``, ...), corruption names from :data:`stainlib.noise.CORRUPTIONS`, models ``aesc`` and ``ae``.
A run goes to ``<out>/<category>/<model>-<corruption>-s<seed>``.  The work is done by :mod:`stainlib.runs`,
:mod:`stainlib.sweep`, :mod:`stainlib.tables`, :mod:`stainlib.synthetic`, :mod:`stainlib.download` and
:mod:`stainlib.predict`.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys

from .paper import GRIDS, TABLE_COLUMNS
from .runs import METHODS
from .spec import BUDGETS, MAX_IMAGE_SIZE, MAX_SEED, RunSpec, integer
from .synthetic import MIN_SIZE as SYNTH_MIN_SIZE

__all__ = ["main"]


def _argument_type(parse):
    """An argparse type from one of :mod:`stainlib.spec`'s parsers: its ``ValueError`` becomes argparse's error,
    which names the flag."""

    def argument(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return argument


def _integer(low: int, high: int | None = None, why: str = ""):
    """An argparse type: an integer from ``low`` to ``high``; argparse names the flag in its error."""
    return _argument_type(integer(low, high, why))


_SEED = _integer(0, MAX_SEED)
_COUNT = _integer(1)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _spec_arguments(p: argparse.ArgumentParser, one_category: bool) -> None:
    """The run flags: one per field of :class:`~stainlib.spec.RunSpec`, made from the field (its default, help, parser
    and choices); a sweep's parser has ``--categories`` and ``--seeds`` instead of the settings each run of its grid
    gets (:func:`stainlib.spec.setting`'s ``per_run``).  A flag not given is absent from the parsed arguments, so
    :func:`_spec` takes the field's default, or a ``--budget``'s value."""
    budgeted = set(BUDGETS["paper"])
    for f in dataclasses.fields(RunSpec):
        meta = f.metadata
        if meta["per_run"] and not one_category and f.name != "category":
            continue
        if f.name == "category" and not one_category:
            p.add_argument("--categories", nargs="+", required=True, help="the categories (folders of DATA_ROOT)")
            continue
        kwargs = {"help": meta["help"], "default": argparse.SUPPRESS}
        if meta["names"] is not None:
            kwargs["help"] += f": one of {', '.join(meta['names'])}"
        if meta["choices"] is not None:
            kwargs["choices"] = list(meta["choices"])
        if meta["parse"] is not None:
            kwargs["type"] = _argument_type(meta["parse"])
        if f.default is dataclasses.MISSING:
            kwargs["required"] = True
        elif f.default is not None:
            kwargs["help"] += f" (default: {f.default}" + (", or the --budget's)" if f.name in budgeted else ")")
        p.add_argument(_flag(f.name), **kwargs)
    if not one_category:
        p.add_argument("--seeds", type=_SEED, nargs="+", default=[0], help="one run of the grid per seed (default: 0)")
    p.add_argument("--budget", choices=list(BUDGETS), help="a named budget: paper = 250 epochs of 2,000 samples")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--compile",
        choices=["off", "on", "auto"],
        default="auto",
        help="train through torch.compile (auto: where measured faster; off for now)",
    )
    p.add_argument("--out", default="runs" if one_category else "results", help="runs go to OUT/CATEGORY/NAME")
    p.add_argument("--retrain", action="store_true", help="train anew a run folder made with other settings")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stainlib", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write the synthetic MVTec-like dataset")
    s.add_argument("--out", default="data/synthetic")
    s.add_argument("--categories", nargs="*")
    s.add_argument("--n-train", type=_COUNT, default=60)
    s.add_argument("--n-test", type=_COUNT, default=30)
    s.add_argument(
        "--image-size", type=_integer(SYNTH_MIN_SIZE, MAX_IMAGE_SIZE, " (the generator draws from 16 px)"), default=256
    )
    s.add_argument("--seed", type=_SEED, default=0)
    s.add_argument("--overwrite", action="store_true", help="replace category folders the generator did not make")

    d = sub.add_parser("download", help="download the real MVTec AD (needs internet)")
    d.add_argument("--out", default="data/mvtec_ad")
    d.add_argument("--categories", nargs="*")
    d.add_argument(
        "--url",
        help="the archive's address ({category} in it: one archive per category); also read from STAINLIB_MVTEC_URL",
    )
    d.add_argument("--sha256", help="the archive's SHA-256 (default: checked only at the official address)")

    t = sub.add_parser("train", help="train one model on one category")
    _spec_arguments(t, one_category=True)
    t.add_argument(
        "--keep-steps",
        type=int,
        nargs="+",
        default=[],
        metavar="STEP",
        help="keep the weights at these optimiser steps (RUN/steps/step-000125.pt), for a learning curve",
    )

    e = sub.add_parser("evaluate", help="evaluate a run on its test split")
    e.add_argument("run")
    e.add_argument(
        "--map",
        "--method",
        dest="map",
        choices=METHODS,
        default="residual",
        help="the anomaly map to score by (--method is the same flag, its older name)",
    )
    e.add_argument("--data-root", help="read the test data from here instead of the run's own data root")
    e.add_argument("--n-samples", type=_integer(2), default=30, help="Monte-Carlo dropout passes")
    e.add_argument("--device", default="auto")
    e.add_argument(
        "--unfinished",
        action="store_true",
        help="evaluate a run that has not trained all its epochs (metrics.json records the epochs trained)",
    )
    e.add_argument("--at-step", type=int, help="score the snapshot of this optimiser step (train --keep-steps)")
    e.add_argument("--fpr", type=float, default=0.01, help="false-positive rate of the calibrated threshold")

    r = sub.add_parser("predict", help="score new images with a run: a CSV of decisions, heatmaps, a summary")
    r.add_argument("run")
    r.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of them (searched recursively)")
    r.add_argument("--out", required=True, help="folder for predictions.csv, heatmaps/ and summary.txt")
    r.add_argument(
        "--map",
        "--method",
        dest="map",
        choices=METHODS,
        help="default: the run's best by image AUROC (residual if none); --method is the same flag, its older name",
    )
    r.add_argument("--threshold", default="auto", help="image threshold: auto (calibrated at --fpr) or a number")
    r.add_argument("--pixel-threshold", default="auto", help="pixel threshold: auto (calibrated) or a number")
    r.add_argument("--fpr", type=float, default=0.01, help="false-positive rate on the clean validation images")
    r.add_argument("--n-samples", type=int, default=30, help="Monte-Carlo dropout passes")
    r.add_argument("--data-root", help="read the validation data from here instead of the run's own data root")
    r.add_argument("--device", default="auto")
    r.add_argument("--batch-size", type=int, default=32, help="images per reconstruction batch")
    r.add_argument("--strict", action="store_true", help="stop at the first unreadable file")

    w = sub.add_parser("sweep", help="train and evaluate a grid of runs")
    w.add_argument("--grid", choices=list(GRIDS), required=True)
    _spec_arguments(w, one_category=False)
    w.add_argument("--n-samples", type=_integer(2), default=30, help="Monte-Carlo dropout passes")
    w.add_argument("--jobs", type=_COUNT, default=1)
    w.add_argument(
        "--print-commands",
        action="store_true",
        help="print one `stainlib sweep ... --task K` command per run and exit (for tools/slurm_array.sh)",
    )
    w.add_argument(
        "--task", type=_integer(0), help="run only the K-th run of the grid (0-based), as a job-array task does"
    )

    b = sub.add_parser("table", help="write a results table in the paper's layout")
    b.add_argument("results")
    b.add_argument("--table", choices=list(TABLE_COLUMNS), required=True)
    b.add_argument("--seed", type=_SEED, default=0)
    return p


def _spec(args, category=None) -> RunSpec:
    """The spec of the parsed run flags: each field as given, else a ``--budget``'s value, else the field's default.

    ``category`` is a sweep's first category (a sweep's grid sets each run's category, model, corruption and seed).
    """
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunSpec) if hasattr(args, f.name)}
    budget = BUDGETS[args.budget] if getattr(args, "budget", None) else {}
    return RunSpec(**{**budget, **given, **({"category": category} if category is not None else {})})


def _keep_large_blocks() -> None:
    """Ask glibc to keep freed large blocks instead of returning them to the kernel at once.

    Training and MC sampling on the CPU allocate and free tens of MB per step; with the default thresholds, each
    allocation page-faults anew and the process spends as much time in the kernel as in computing.  Only the command
    line does this (importing stainlib changes nothing); it is a no-op where glibc is absent.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _run(args) -> int:
    if args.command == "synth":
        from .synthetic import make_synthetic

        root = make_synthetic(
            args.out,
            args.categories,
            n_train=args.n_train,
            n_test=args.n_test,
            size=args.image_size,
            seed=args.seed,
            overwrite=args.overwrite,
        )
        print(f"synthetic dataset in {root}")
    elif args.command == "download":
        from .download import download_mvtec

        print(f"MVTec AD in {download_mvtec(args.out, args.categories, url=args.url, sha256=args.sha256 or 'auto')}")
    elif args.command == "train":
        from .runs import train

        train(
            _spec(args),
            args.out,
            device=args.device,
            retrain=args.retrain,
            compile=args.compile,
            keep_steps=args.keep_steps,
        )
    elif args.command == "evaluate":
        from .runs import evaluate

        evaluate(
            args.run,
            args.map,
            n_samples=args.n_samples,
            device=args.device,
            data_root=args.data_root,
            unfinished=args.unfinished,
            at_step=args.at_step,
            fpr=args.fpr,
        )
    elif args.command == "predict":
        from .predict import predict_to_folder

        return predict_to_folder(
            args.run,
            args.paths,
            args.out,
            map=args.map,
            threshold=args.threshold,
            pixel_threshold=args.pixel_threshold,
            fpr=args.fpr,
            n_samples=args.n_samples,
            device=args.device,
            batch_size=args.batch_size,
            data_root=args.data_root,
            strict=args.strict,
        )
    elif args.command == "sweep":
        from .sweep import sweep, task_commands

        base = _spec(args, category=args.categories[0])
        if args.print_commands:
            for argv in task_commands(
                args.grid, base, args.categories, args.seeds, args.out, args.n_samples, args.device, args.compile
            ):
                print(shlex.join(argv))
            return 0
        report = sweep(
            args.grid,
            base,
            args.categories,
            args.seeds,
            args.out,
            args.n_samples,
            args.device,
            args.jobs,
            args.retrain,
            task=args.task,
            compile=args.compile,
        )
        return 1 if report["failed"] else 0
    elif args.command == "table":
        from .tables import make_table

        print(make_table(args.results, args.table, seed=args.seed)["markdown"])
    return 0


# Errors a user can meet and act on: one line, exit status 2.  (UnpicklingError: a damaged or foreign file.)
KNOWN_ERRORS = (ValueError, RuntimeError, OSError, KeyError, TypeError, ArithmeticError, AssertionError)


def _one_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines) if lines else type(exc).__name__


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or "can't allocate memory" in text


def _error_line(prefix: str, exc: Exception) -> str:
    """The one line that reports ``exc``: the library's own message as written, else the error's type and message; an
    error not in :data:`KNOWN_ERRORS` is "unexpected" and points to ``STAINLIB_DEBUG``."""
    import pickle

    known = isinstance(exc, (*KNOWN_ERRORS, pickle.UnpicklingError, MemoryError))
    if _out_of_memory(exc):
        detail = f" ({_one_line(exc)[:120]})" if known else ""
        return f"{prefix}: error: out of memory{detail}; use a smaller --image-size or --batch-size"
    if isinstance(exc, (ValueError, RuntimeError, OSError)):  # the library's own messages, kept as written
        return f"{prefix}: error: {exc}"
    if known:
        return f"{prefix}: error: {type(exc).__name__}: {_one_line(exc)}"
    return (
        f"{prefix}: unexpected error: {type(exc).__name__}: {_one_line(exc)} "
        "(run with STAINLIB_DEBUG=1 for the traceback)"
    )


def main(argv=None) -> int:
    """Run the command line; errors are one line on stderr (exit 2), Ctrl-C says how to resume (exit 130), and so
    does SIGTERM during training (exit 143, the finished epochs saved).

    Unexpected errors are one line too, with their type; ``STAINLIB_DEBUG=1`` lets any error through as a traceback.
    Called from Python, it returns the exit status in every case (an error in the arguments too, status 2); a closed
    output pipe (``... | head``) ends it with status 141, as the signal would, silently where the output was all.
    """
    import os

    import matplotlib

    from .train import Terminated

    matplotlib.use("Agg")  # the command line draws into files only
    _keep_large_blocks()
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error (or the help)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    prefix = f"stainlib {args.command}"
    debug = os.environ.get("STAINLIB_DEBUG", "") not in ("", "0")
    try:
        return _run(args)
    except BrokenPipeError:
        try:  # stdout's reader is gone: keep the interpreter from failing on the final flush
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        if args.command != "table" and not getattr(args, "print_commands", False):  # work cut short: say so
            try:
                print(f"{prefix}: stopped: its output was closed (broken pipe)", file=sys.stderr)
            except OSError:
                pass
        return 141
    except Terminated:
        if debug:
            raise
        print(
            f"{prefix}: terminated (SIGTERM); the finished epochs are saved: run the same command to resume",
            file=sys.stderr,
        )
        return 143
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prefix}: interrupted; run the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # MemoryError and pickle.UnpicklingError included
        if debug:
            raise
        print(_error_line(prefix, exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

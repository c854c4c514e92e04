"""Build the book: execute every chapter with papermill, check the executed notebooks with nbval, build the site.

Each chapter is a pair made by Jupytext: ``book/NAME.md`` (MyST Markdown, the file to edit and review) and
``book/NAME.ipynb`` (what papermill executes and Colab opens).  After editing the Markdown, run
``jupytext --sync book/*.md`` (tests/test_book.py fails while a pair is out of sync).

    python tools/build_book.py [--profile auto|fast|full] [--chapters NAME ...] [--skip-nbval]

1. Every chapter listed in _toc.yml is executed by papermill, from the repository root, into _build/src/book/.
   A failing cell stops the build (exit 1) and names the chapter.
2. nbval re-runs the executed notebooks and compares their outputs (strict), with the sanitisers of
   book/nbval_sanitize.cfg for timings and memory addresses; cells whose output depends on timing or training carry
   the ``nbval-ignore-output`` cell tag (a tag, unlike a comment, does not show on the page).
3. Jupyter Book 1 builds the HTML from the executed notebooks with ``-W -n --keep-going``, from a clean _build, into
   _build/html.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
SRC = BUILD / "src"


def chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for c in toc.get("chapters", [])]


def execute(profile: str, only: list[str] | None) -> dict:
    """Execute the chapters; returns the seconds each took."""
    import papermill

    seconds = {}

    for entry in chapters():
        src = ROOT / f"{entry}.ipynb"
        if not src.exists():  # a plain Markdown page (the references)
            continue
        if only and src.stem not in only:
            continue
        dst = SRC / f"{entry}.ipynb"
        dst.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        print(f"executing {entry} ...", flush=True)
        try:
            papermill.execute_notebook(
                str(src),
                str(dst),
                parameters={"profile": profile},
                cwd=str(ROOT),
                kernel_name="python3",
                progress_bar=False,
            )
        except papermill.PapermillExecutionError as exc:
            print(f"chapter {entry} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}", file=sys.stderr)
            sys.exit(1)
        hide_injected_parameters(dst)
        seconds[src.stem] = round(time.perf_counter() - start, 1)
        print(f"  {entry}: {seconds[src.stem]:.1f} s", flush=True)
    return seconds


def record_timings(profile: str, seconds: dict, cold: bool, load: float) -> None:
    """Write ``_build/timings.json``: what each chapter took to execute, and on what (the introduction's table reads a
    committed copy, ``results/book_timings.json``)."""
    import datetime
    import json

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    record = {
        "date": datetime.date.today().isoformat(),
        "commit": commit,
        "profile": profile,
        "cpus": os.cpu_count(),
        "load_average_at_start": round(load, 1),
        "cold": cold,  # nothing trained before: every chapter trained what it needs
        "chapters": seconds,
    }
    (BUILD / "timings.json").write_text(json.dumps(record, indent=1) + "\n")


def hide_injected_parameters(path: Path) -> None:
    """Keep papermill's injected-parameters cell in the executed notebook, but out of the site."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


def is_plain_page(path: Path) -> bool:
    """A Markdown page of its own (the references), not the Jupytext twin of a chapter's notebook.

    The twins are left out of the site's sources: the site is built from the executed notebooks, and a page found
    both as ``.md`` and as ``.ipynb`` would be a duplicate (a warning, an error under ``-W``).
    """
    return path.suffix == ".md" and not path.with_suffix(".ipynb").exists()


def copy_sources() -> None:
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(ROOT / name, SRC / name)
    shutil.copytree(ROOT / "static", SRC / "static", dirs_exist_ok=True)
    for path in (ROOT / "book").iterdir():
        if is_plain_page(path) or path.is_dir() and path.name == "figures":
            target = SRC / "book" / path.name
            shutil.copytree(path, target, dirs_exist_ok=True) if path.is_dir() else shutil.copy(path, target)


def nbval(only) -> None:
    notebooks = sorted((SRC / "book").glob("*.ipynb"))
    if only:
        notebooks = [n for n in notebooks if n.stem in only]
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--nbval",
        "--nbval-sanitize-with",
        str(ROOT / "book" / "nbval_sanitize.cfg"),
        "--nbval-kernel-name",
        "python3",
        "-o",
        "testpaths=",
        "--rootdir",
        str(SRC),
        *map(str, notebooks),
    ]
    print("validating the executed notebooks with nbval ...", flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def build_html() -> None:
    print("building the site with Jupyter Book ...", flush=True)
    out = BUILD / "site"
    cmd = [
        str(Path(sys.executable).parent / "jupyter-book"),
        "build",
        str(SRC),
        "--path-output",
        str(out),
        "-W",
        "-n",
        "--keep-going",
    ]
    subprocess.run(cmd, check=True, cwd=ROOT)
    shutil.copytree(out / "_build" / "html", BUILD / "html")
    print(f"site: {BUILD / 'html' / 'index.html'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="auto", choices=["auto", "fast", "full"])
    parser.add_argument("--chapters", nargs="*", help="execute only these chapters (by file name, no suffix)")
    parser.add_argument("--skip-nbval", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    cold = not any((ROOT / "runs").glob("book-*/**/config.json"))  # the chapters train into runs/book-<profile>
    shutil.rmtree(BUILD, ignore_errors=True)
    SRC.mkdir(parents=True)
    load = os.getloadavg()[0]
    seconds = execute(args.profile, args.chapters)
    if not args.chapters:
        record_timings(args.profile, seconds, cold, load)
    copy_sources()
    if not args.skip_nbval:
        nbval(args.chapters)
    if args.chapters:
        print("some chapters only: the site is not built")
    else:
        build_html()
    print(f"book built in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

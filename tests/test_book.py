"""Claims about the book's sources: the template of every chapter, the Markdown/notebook pairs, the Colab install."""

import json
import re
import sys
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from build_book import is_plain_page  # noqa: E402

SETUP = """from stainlib.book import setup

settings = setup(profile, data_root, categories, epochs, image_size)
category = settings.category"""
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
ENTRIES = [TOC["root"]] + [c["file"] for c in TOC["chapters"]]
CHAPTERS = [e for e in ENTRIES if (ROOT / f"{e}.ipynb").exists()]


def cells(entry):
    nb = json.loads((ROOT / f"{entry}.ipynb").read_text())
    return [(c["cell_type"], "".join(c["source"]), c["metadata"].get("tags", [])) for c in nb["cells"]]


def test_the_table_of_contents_lists_every_chapter_and_every_chapter_exists():
    on_disk = {f"book/{p.stem}" for p in (ROOT / "book").glob("*.ipynb")}
    assert on_disk == set(CHAPTERS)
    assert len(CHAPTERS) == 9
    assert all((ROOT / f"{e}.ipynb").exists() or (ROOT / f"{e}.md").exists() for e in ENTRIES)


@pytest.mark.parametrize("entry", CHAPTERS)
def test_chapter_follows_the_template(entry):
    c = cells(entry)
    kinds = [k for k, _, _ in c]
    text = [s for _, s, _ in c]
    # 0: the Colab install cell; 1: title and what you will learn; 2: parameters; then the idea, code, summary,
    # exercises and review questions, in that order.
    assert kinds[0] == "code" and "google.colab" in text[0] and "remove-cell" in c[0][2]
    assert kinds[1] == "markdown" and text[1].startswith("# ") and "**What you will learn**" in text[1]
    assert "parameters" in c[2][2]
    for name in ("profile", "data_root", "categories", "epochs", "image_size"):
        assert re.search(rf"^{name} = ", text[2], re.M), name
    assert re.search(r'^profile = "auto"', text[2], re.M)
    assert text[3] == SETUP  # the chapter's setup is one call, the same in every chapter
    assert "nbval-ignore-output" in c[3][2]  # its output names the machine's device: not compared by nbval
    summary = next(i for i, s in enumerate(text) if s.startswith("## Summary"))
    exercises = next(i for i, s in enumerate(text) if s.startswith("## Exercises"))
    assert summary < exercises == len(c) - 2
    n_exercises = len(re.findall(r"^\d+\. ", text[exercises], re.M))
    assert 2 <= n_exercises <= 4
    review = text[-1]  # the chapter ends with 3 to 5 review questions, each answer collapsed
    assert review.startswith("## Review questions")
    n_questions = len(re.findall(r"^\d+\. ", review, re.M))
    assert 3 <= n_questions <= 5
    assert review.count("{admonition} Answer") == review.count(":class: dropdown") == n_questions
    assert any(k == "code" and "stainlib" in s for k, s, _ in c[3:summary])
    assert any("{cite}" in s for s in text), "every chapter cites what it uses"


@pytest.mark.parametrize("entry", CHAPTERS)
def test_colab_install_cell_uses_the_repository_url_of_the_config(entry):
    install = cells(entry)[0][1]
    assert f'REPOSITORY = "{CONFIG["repository"]["url"]}"' in install


@pytest.mark.parametrize("entry", CHAPTERS)
def test_chapter_sources_are_committed_without_outputs(entry):
    nb = json.loads((ROOT / f"{entry}.ipynb").read_text())
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")


def test_offline_assets_are_vendored_outside_static_underscore_and_configured():
    sphinx = CONFIG["sphinx"]["config"]
    assert sphinx["html_static_path"] == ["static"]
    for path in [*sphinx["nb_ipywidgets_js"], sphinx["mathjax_path"]]:
        assert not path.startswith("http")
        assert (ROOT / "static" / path).is_file(), path
    assert not (ROOT / "_static").exists()


def essence(notebook):
    return [(c.cell_type, c.source.strip(), c.metadata.get("tags", [])) for c in notebook.cells]


@pytest.mark.parametrize("entry", CHAPTERS)
def test_chapter_markdown_and_notebook_are_in_sync(entry):
    md, nb = ROOT / f"{entry}.md", ROOT / f"{entry}.ipynb"
    assert md.exists(), f"{md} is missing: run jupytext --set-formats ipynb,md:myst {nb}"
    assert essence(jupytext.read(md)) == essence(jupytext.read(nb)), f"out of sync: run jupytext --sync {md}"
    assert jupytext.read(nb).metadata["jupytext"]["formats"] == "ipynb,md:myst"


def test_only_plain_markdown_pages_are_copied_into_the_site_sources_not_the_chapters_twins():
    plain = sorted(p.name for p in (ROOT / "book").glob("*.md") if is_plain_page(p))
    assert plain == ["references.md"]


@pytest.mark.parametrize("entry", CHAPTERS)
def test_colab_install_cell_installs_stainlib_alone_never_torch_and_turns_widgets_on(entry):
    install = cells(entry)[0][1]
    pip = next(line for line in install.splitlines() if '"pip", "install"' in line)
    assert '"--no-deps"' in pip and "[book]" not in pip and "torch" not in pip
    assert "output.enable_custom_widget_manager()" in install


def _chapter_numbers():
    """Number -> (file, title) as the site numbers them: the root page is not numbered, the chapters count from 1."""
    numbers = {}
    for n, entry in enumerate((c["file"] for c in TOC["chapters"]), start=1):
        prose = re.sub(r"```.*?```", "", (ROOT / f"{entry}.md").read_text(), flags=re.S)  # not the code cells
        title = next(line[2:] for line in prose.splitlines() if line.startswith("# "))
        numbers[n] = (entry.split("/")[-1], title)
    return numbers


def test_chapter_numbers_typed_in_docstrings_and_prose_are_the_numbers_the_site_shows():
    numbers, wrong = _chapter_numbers(), []
    for path in sorted(
        [*(ROOT / "stainlib").glob("*.py"), *(ROOT / "tools").glob("*.py"), *(ROOT / "book").glob("*.md")]
    ):
        text = path.read_text()
        # 'chapter 4, "Training"' / 'chapter 8 ("Beyond the paper")': the number must be the titled chapter's
        for n, name in re.findall(r'[Cc]hapter (\d+),? \(?"([^"]+)"', text):
            if int(n) not in numbers or not numbers[int(n)][1].startswith(name):
                wrong.append(f"{path.name}: chapter {n} named {name!r}")
        # 'Chapter 7, {doc}`table_3`': the number must be that document's
        for n, doc in re.findall(r"[Cc]hapter (\d+), \{doc\}`([^`]+)`", text):
            if numbers.get(int(n), ("",))[0] != doc:
                wrong.append(f"{path.name}: chapter {n} links {doc}")
    assert not wrong


HIDDEN_INPUT = {"remove-input", "hide-input", "remove-cell", "hide-cell"}


def _names(source: str) -> tuple[set, set]:
    """The names a cell's code defines and the names it reads (IPython magics and shell lines left out)."""
    import ast

    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    defined, used = set(), set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            defined.add(node.name)
    return defined, used


@pytest.mark.parametrize("entry", CHAPTERS)
def test_visible_cells_run_on_their_own(entry):
    """A student who types the cells the page shows, in order, can run them: no shown cell reads a name that only a
    hidden cell (remove-input, hide-input, remove-cell) defines."""
    import builtins

    known, wrong = set(dir(builtins)) | {"display", "get_ipython"}, []
    for kind, source, tags in cells(entry):
        if kind != "code" or (set(tags) & HIDDEN_INPUT and "parameters" not in tags):
            continue
        defined, used = _names(source)
        missing = used - known - defined
        if missing:
            wrong.append(f"{sorted(missing)} in the cell that starts {source.splitlines()[0]!r}")
        known |= defined
    assert not wrong, f"{entry}: shown cells read names defined only in hidden cells: {wrong}"

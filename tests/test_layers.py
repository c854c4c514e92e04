"""Claims about stainlib's import graph: three layers that import only downward, and no cycle (the package's layout,
stainlib/__init__.py).

The graph is read from the source with ``ast``: every import of a stainlib module, at module level and inside
functions alike, so that an import placed inside a function cannot hide a cycle.  A new module must be placed in a
layer here before its imports are checked.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stainlib"

LAYERS = {
    # Data, corruptions, networks, training, detection, metrics, their files, and the statistics of a claim.
    # ``plotting`` (and ``corruption_figures``, which draws with its helpers) draws tensors with matplotlib and imports
    # only core modules; ``runs.evaluate`` draws each run's figure_<map>.png with it, so it sits here rather than with
    # the pages.
    "core": {
        "checkpoints",
        "checksums",
        "claims",
        "corruption",
        "corruption_figures",
        "costs",
        "data",
        "detect",
        "download",
        "epochs",
        "files",
        "metrics",
        "models",
        "noise",
        "plotting",
        "precision",
        "runstate",
        "spec",
        "stain",
        "synthetic",
        "synthetic_images",
        "threshold",
        "train",
    },
    # The paper's experiment, the runs it is made of, those runs in words and the claims checked on them.
    "experiment": {"collect", "describe", "paper", "predict", "predictions", "runs", "sweep"},
    # What a reader sees: the evidence box, tables, the chapters' shared setup, widgets, diagrams.
    "presentation": {"book", "diagrams", "evidence", "learning_curve", "tables", "widgets"},
    # The command line and the package's own namespace, on top.
    "top": {"cli", "__init__"},
}
RANK = {module: rank for rank, members in enumerate(LAYERS.values()) for module in members}
LAYER_OF = {module: layer for layer, members in LAYERS.items() for module in members}


def import_edges(package: Path) -> list[tuple[str, str, int, bool]]:
    """Every import of one module of ``package`` by another: ``(importer, imported, line, inside_a_function)``.

    Reads ``from .x import y``, ``from . import x``, ``import stainlib.x`` and ``from stainlib.x import y`` (also
    ``from stainlib import x``), wherever they stand in the file.
    """
    name = package.name
    modules = {p.stem for p in package.glob("*.py")}
    edges = []
    for path in sorted(package.glob("*.py")):
        importer = path.stem

        def visit(node, in_function, importer=importer):
            targets = []
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                ours = node.level == 1 or module == name or (node.level == 0 and module.startswith(name + "."))
                base = module if node.level == 1 else module[len(name) + 1 :]
                if ours and base:
                    targets.append(base.split(".")[0])
                elif ours:  # from . import x / from stainlib import x: the names that are modules
                    targets += [a.name for a in node.names if a.name in modules]
            elif isinstance(node, ast.Import):
                targets += [a.name.split(".")[1] for a in node.names if a.name.startswith(name + ".")]
            for target in targets:
                if target in modules and target != importer:
                    edges.append((importer, target, node.lineno, in_function))
            inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            for child in ast.iter_child_nodes(node):
                visit(child, inside)

        visit(ast.parse(path.read_text(), str(path)), False)
    return edges


def cycles(edges) -> list[list[tuple]]:
    """The import cycles of ``edges``: for each group of modules that import each other in a circle (a strongly
    connected component of two modules or more), the edges between them."""
    graph: dict[str, set[str]] = {}
    for a, b, *_ in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def connect(v):  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [[e for e in edges if e[0] in g and e[1] in g] for g in groups]


def words(edge) -> str:
    a, b, line, in_function = edge
    return f"{a} -> {b} (stainlib/{a}.py:{line}, {'inside a function' if in_function else 'module level'})"


def test_every_module_of_stainlib_is_placed_in_exactly_one_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    placed = [m for members in LAYERS.values() for m in members]
    assert len(placed) == len(set(placed)), "a module is placed in two layers"
    assert not modules - set(placed), f"place these modules in a layer of tests/test_layers.py: {modules - set(placed)}"
    assert not set(placed) - modules, f"no such modules: {set(placed) - modules}"


def test_no_module_imports_a_module_of_a_higher_layer():
    upward = [e for e in import_edges(PACKAGE) if RANK.get(e[1], 0) > RANK.get(e[0], 0)]
    assert not upward, "imports that point upward:\n" + "\n".join(
        f"{words(e)}: {LAYER_OF[e[0]]} imports {LAYER_OF[e[1]]}" for e in upward
    )


def test_the_import_graph_has_no_cycle_counting_imports_inside_functions():
    found = cycles(import_edges(PACKAGE))
    assert not found, "import cycles:\n" + "\n".join(
        "among " + ", ".join(sorted({e[0] for e in c})) + ":\n  " + "\n  ".join(map(words, c)) for c in found
    )


def test_the_graph_reader_sees_an_import_inside_a_function_and_names_the_cycle_it_closes(tmp_path):
    package = tmp_path / "stainlib"
    package.mkdir()
    (package / "a.py").write_text("from .b import f\n")
    (package / "b.py").write_text("import os\n\n\ndef f():\n    from . import a\n\n    return a\n")
    (package / "c.py").write_text("import stainlib.a\nfrom stainlib import b\n")
    edges = import_edges(package)
    assert sorted(edges) == [("a", "b", 1, False), ("b", "a", 5, True), ("c", "a", 1, False), ("c", "b", 2, False)]
    assert cycles(edges) == [[("a", "b", 1, False), ("b", "a", 5, True)]]
    assert words(("b", "a", 5, True)) == "b -> a (stainlib/b.py:5, inside a function)"

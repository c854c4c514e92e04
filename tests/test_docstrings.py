"""Every public function and method of the core layer (tests/test_layers.py) says what it takes and gives: an
``Args:`` or ``Returns:`` section, or a short example (``>>>``, an ``Example:`` line, or an inline ``f(x) == y``).

Read from the source with ``ast``, so nothing is imported.  Public: a module-level function in the module's
``__all__`` (or, without one, not starting with ``_``), and a method not starting with ``_`` of such a class.
"""

import ast
import re
from pathlib import Path

from test_layers import LAYERS, PACKAGE

INLINE_EXAMPLE = re.compile(r"``[^`]*==[^`]*``")

# Documented elsewhere, each for a reason:
EXEMPT = {
    # Its source is printed verbatim by the training chapter, which explains it in prose.
    "train.adam",
    # torch.nn.Module's hook for the arguments shown in the module's repr.
    "models.MCDropout.extra_repr",
}
# A corruption model's ``apply`` implements the protocol documented once on ``CorruptionModel.apply``.
PROTOCOL_METHODS = {"apply": "CorruptionModel"}


def documented(doc: str | None) -> bool:
    return bool(doc) and (
        "Args:" in doc
        or "Returns:" in doc
        or ">>>" in doc
        or "Example:" in doc
        or "Examples:" in doc
        or bool(INLINE_EXAMPLE.search(doc))
    )


def public_names(tree: ast.Module):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return None


def undocumented(path: Path) -> list[str]:
    """The public functions and methods of the module at ``path`` whose docstring lacks Args/Returns or an example
    (a property needs only a docstring: it takes nothing and its docstring says what it is)."""
    module = path.stem
    tree = ast.parse(path.read_text(), str(path))
    names = public_names(tree)

    def public(name):
        return name in names if names is not None else not name.startswith("_")

    missing = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and public(node.name):
            if not documented(ast.get_docstring(node)):
                missing.append(f"{module}.{node.name}")
        elif isinstance(node, ast.ClassDef) and public(node.name):
            bases = {getattr(b, "id", getattr(b, "attr", None)) for b in node.bases}
            for item in node.body:
                if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) or item.name.startswith("_"):
                    continue
                if PROTOCOL_METHODS.get(item.name) in bases:
                    continue
                doc = ast.get_docstring(item)
                is_property = any(getattr(d, "id", None) == "property" for d in item.decorator_list)
                if not (doc if is_property else documented(doc)):
                    missing.append(f"{module}.{node.name}.{item.name}")
    return missing


def test_every_public_function_of_the_core_layer_has_args_returns_or_an_example():
    missing = [name for module in sorted(LAYERS["core"]) for name in undocumented(PACKAGE / f"{module}.py")]
    missing = [name for name in missing if name not in EXEMPT]
    assert not missing, "add Args:/Returns: or a short example to the docstrings of:\n  " + "\n  ".join(missing)


def test_the_exemptions_name_existing_functions_that_still_lack_the_sections():
    found = {name for module in LAYERS["core"] for name in undocumented(PACKAGE / f"{module}.py")}
    assert EXEMPT <= found, f"drop from EXEMPT (documented now, or gone): {sorted(EXEMPT - found)}"


def test_the_check_names_a_function_without_sections_and_passes_one_with_an_example(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(
        '__all__ = ["a", "b", "C"]\n\n'
        'def a():\n    """Nothing said."""\n\n'
        'def b():\n    """Example: ``b() == 1``."""\n\n'
        "def _c():\n    pass\n\n"
        "class C:\n"
        '    @property\n    def p(self):\n        """A property."""\n\n'
        "    def m(self):\n        pass\n"
    )
    assert undocumented(path) == ["m.a", "m.C.m"]

"""Modules depend in one direction: core → dataset → synth → datatools → metrics → model → checkpoint → train → official →
convert → eval → testing. This test reads the imports of every `vessel_nb/*.py` (at any depth, lazy imports inside
functions included) and fails on an import of a later module; the architecture page shows the same graph."""
import ast, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT/"vessel_nb"
ORDER = ["core", "dataset", "synth", "dicom", "datatools", "metrics", "model", "checkpoint", "train", "official", "convert", "eval", "predict", "testing"]
MODULES = sorted(p.stem for p in PKG.glob("*.py") if not p.stem.startswith("_"))


def _is_main_guard(node) -> bool:
    "`if __name__ == '__main__'`: a command-line entry may hand over to the module with the tools (dataset → datatools)."
    t = node.test if isinstance(node, ast.If) else None
    return isinstance(t, ast.Compare) and isinstance(t.left, ast.Name) and t.left.id == "__name__" or \
        isinstance(t, ast.BoolOp) and any(isinstance(v, ast.Compare) and isinstance(v.left, ast.Name) and v.left.id == "__name__" for v in t.values)


def _targets(node) -> set[str]:
    "The vessel_nb modules one import statement names."
    if isinstance(node, ast.ImportFrom):
        if node.level == 1 and node.module: return {node.module.split(".")[0]}
        if node.module == "vessel_nb": return {a.name for a in node.names}
        if node.module and node.module.startswith("vessel_nb."): return {node.module.split(".")[1]}
    if isinstance(node, ast.Import):
        return {a.name.split(".")[1] for a in node.names if a.name.startswith("vessel_nb.")}
    return set()


def imports_of(path:Path) -> set[str]:
    "Every vessel_nb module imported by the file at `path`, outside its `__main__` guard."
    out, todo = set(), [ast.parse(path.read_text())]
    while todo:
        node = todo.pop()
        if _is_main_guard(node): continue
        out |= _targets(node)
        todo.extend(ast.iter_child_nodes(node))
    return out & set(MODULES) - {path.stem}


def graph() -> dict[str, set[str]]:
    return {m: imports_of(PKG/f"{m}.py") for m in MODULES}


def test_every_module_has_a_place_in_the_order():
    assert set(MODULES) <= set(ORDER), f"place the new module(s) {sorted(set(MODULES) - set(ORDER))} in ORDER and on the architecture page"


@pytest.mark.parametrize("mod", MODULES)
def test_imports_go_to_earlier_modules_only(mod):
    later = {d for d in graph()[mod] if ORDER.index(d) > ORDER.index(mod)}
    assert not later, f"vessel_nb.{mod} imports the later module(s) {sorted(later)}; move the shared code earlier (order: {' → '.join(ORDER)})"


def test_the_checker_sees_lazy_imports(tmp_path):
    "A backwards import hidden inside a function is found (the test can fail); the `__main__` hand-over is not counted."
    p = tmp_path/"model.py"
    p.write_text("from .core import x\ndef f():\n    from vessel_nb.eval import y\n    import vessel_nb.train\n"
                 "if __name__ == '__main__':\n    from vessel_nb.convert import main\n")
    assert imports_of(p) == {"core", "eval", "train"}


def test_architecture_page_shows_the_real_graph():
    "Each module's row on the architecture page lists exactly the modules it imports."
    page = (ROOT/"nbs"/"explanations"/"architecture.md").read_text()
    for mod, deps in graph().items():
        row = re.search(rf"^\| `[^`]+\.ipynb` \| `vessel_nb\.{mod}` \| ([^|]*) \|", page, re.M)
        assert row, f"architecture.md has no table row for vessel_nb.{mod}"
        shown = {d.strip() for d in row.group(1).split(",") if d.strip() not in ("", "—")}
        assert shown == deps, f"architecture.md says vessel_nb.{mod} depends on {sorted(shown)}; its imports say {sorted(deps)}"

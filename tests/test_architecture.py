"""The house rules that keep the code readable: layers import downwards only, no import cycle (not even one hidden
by an import inside a function), the engine never reaches the app or a GUI package, lines ≤ 120 characters.

docs/architecture.md draws the layers these tests hold the code to.
"""
import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "app")
# imports allowed inside functions, each for a stated reason: optional or slow to import, needed only on one path
LAZY = {"imageio_ffmpeg": "optional (the video extra), only for MP4 export",
        "datashader": "≈ 2 s to import, only for fields wider than their figure",
        "distributed": "optional (the cluster extra), ≈ 1 s to import, only with a Dask scheduler",
        "dask": "optional (the cluster extra): the lazy template of a zarr store written share by share"}
GUI = ("app", "panel", "bokeh", "holoviews")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, ast.Module]:
    return {module_name(path): ast.parse(path.read_text(), str(path))
            for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def imported(node: ast.AST, modules: set[str]) -> list[str]:
    """The project modules an import statement names (``from a.b import c`` names a.b.c when that is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] in PACKAGES]
    if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
        found = [f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in modules]
        return found or [node.module]
    return []


def import_graph() -> dict[str, set[str]]:
    trees = sources()
    modules = set(trees)
    graph = {name: set() for name in trees}
    for name, tree in trees.items():
        for node in ast.walk(tree):  # every import, at the top or inside a function
            graph[name].update(target for target in imported(node, modules) if target != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


ARCHITECTURE = ROOT / "docs" / "architecture.md"


def layer_table() -> list[tuple[str, list[str]]]:
    """The layers of docs/architecture.md, top (imported by all) first: (layer, the names in its modules cell)."""
    text = ARCHITECTURE.read_text().split("## The layers", 1)[1]
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| layer")]
    return [(cells[0], re.findall(r"`([^`]+)`", cells[1]))
            for cells in ([cell.strip() for cell in row.strip("|").split("|")] for row in rows)]


def table_module(name: str) -> tuple[str, bool]:
    """A name of the table as (dotted module, whether it stands for the whole package): ``data/store`` is
    engine.data.store, ``data/*`` the package engine.data and its modules, ``app/plots`` app.plots, ``__init__``
    the package engine itself."""
    if name == "__init__":
        return "engine", False
    dotted = ("app." if name.startswith("app/") else "engine.") + name.removeprefix("app/").replace("/", ".")
    return (dotted[:-2], True) if dotted.endswith(".*") else (dotted, False)


def place(module: str, table: list[tuple[str, list[str]]]) -> int | None:
    """The index of ``module``'s layer in ``table``, or None where the table does not place it."""
    for index, (_, names) in enumerate(table):
        for target, whole in map(table_module, names):
            if module == target or (whole and module.startswith(target + ".")):
                return index
    return None


def test_every_module_imports_only_from_its_own_layer_or_those_above_it_in_the_architecture_table():
    table, graph = layer_table(), import_graph()
    assert [name for name, _ in table][:2] == ["foundations", "spectral"] and len(table) >= 10
    unplaced = sorted(module for module in graph if place(module, table) is None)
    assert unplaced == [], f"docs/architecture.md's layer table does not place {unplaced}"
    upward = [f"{module} ({table[place(module, table)][0]}) imports {target} ({table[place(target, table)][0]})"
              for module, targets in sorted(graph.items()) for target in sorted(targets)
              if place(target, table) > place(module, table)]
    assert upward == [], "\n".join(upward)


def test_the_layer_check_finds_an_import_that_runs_back_up():
    table = [("low", ["errors"]), ("high", ["cli", "app/*"])]
    assert place("engine.errors", table) == 0 and place("engine.cli", table) == 1 and place("app.plots", table) == 1
    assert place("engine.models.unet", [("models", ["models/*"])]) == 0 and place("engine.spectral", table) is None


def test_the_import_graph_of_engine_and_app_has_no_cycle():
    assert find_cycle(import_graph()) is None, " → ".join(find_cycle(import_graph()))


def test_a_cycle_would_be_found():  # the checker itself: a → b → c → a
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_inside_functions_are_only_the_stated_lazy_ones():
    lazy = []
    for name, tree in sources().items():
        for function in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                    lazy += [f"{name}: {target}" for target in names if target.split(".")[0] not in LAZY]
    assert lazy == []


def test_the_engine_never_imports_the_app_or_a_gui_package():
    offending = []
    for name, tree in sources().items():
        if not name.startswith("engine"):
            continue
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            offending += [f"{name}: {target}" for target in names if target.split(".")[0] in GUI]
    assert offending == []


def test_every_module_imports_in_a_fresh_interpreter():
    # app.main builds a session and engine.__main__ runs the CLI when imported: both are entry points, not modules
    names = sorted(name for name in sources() if name not in ("app.main", "engine.__main__"))
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({name!r})\n" for name in names)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_no_line_in_engine_and_app_is_longer_than_120_characters():
    long = [f"{path.relative_to(ROOT)}:{number}" for package in PACKAGES for path in (ROOT / package).rglob("*.py")
            for number, line in enumerate(path.read_text().splitlines(), 1) if len(line) > 120]
    assert long == []


def test_no_function_in_engine_and_app_is_longer_than_60_lines():
    long = [f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines" for name, tree in sources().items()
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > 60]
    assert long == []

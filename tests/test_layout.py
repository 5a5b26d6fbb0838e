"""The house rules a newcomer can rely on: layers point down (no import cycle, lazy imports
included), no module grows past a size one can read in a sitting without saying why, and the
command line starts without torch."""

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "impasto"
MAX_LINES = 420  # "about 400": a few lines over are not worth a split


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """impasto modules that ``path`` imports, at the top or inside functions (a lazy import is
    still a dependency), leaving out imports for type checkers only. ``from pkg import mod``
    depends on ``pkg.mod`` alone when ``mod`` is a module."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    found = set()
    here = _module_name(path)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("impasto")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package of this module
                package = here.split(".")[
                    : len(here.split(".")) - node.level + (path.name == "__init__.py")
                ]
                base = ".".join([*package, *([base] if base else [])])
            if base.startswith("impasto"):
                for a in node.names:
                    found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in _imports(path, set(modules)) if m in modules and m != name}
        for name, path in modules.items()
        if name != "impasto"  # the package's facade names everything, lazily
    }


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_modules_are_short_or_say_why():
    long = []
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and "longer than" not in doc:
            long.append(f"{path.relative_to(SRC)}: {lines} lines")
    assert not long, "modules over ~400 lines without a reason in their docstring: " + ", ".join(
        long
    )


def test_the_command_line_starts_without_torch():
    code = "import sys, impasto.cli; impasto.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

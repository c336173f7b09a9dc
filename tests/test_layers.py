"""The package's layers hold: the pure layers import no compiled or UI stack, only the CLI
and rendering import typer/rich, no module imports the package root, no import cycles."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import capacity

PKG = Path(capacity.__file__).parent

# Layer -> libraries its modules must not pull in (directly or through anything they import).
PURE_LAYERS = ("capacity.profile", "capacity.model", "capacity.limits")
PURE_FORBIDDEN = ("numba", "scipy", "typer", "rich")
UI_LAYERS = ("capacity.cli", "capacity.render")
UI_LIBS = ("typer", "rich")
ENTRY_POINTS = ("capacity.__main__", "capacity.loadgen.locustfile")


def _modules() -> list[str]:
    """Every module of the package, found by walking it in a fresh interpreter (walking
    imports the subpackages, which this process should not have to)."""
    code = ("import json, pkgutil, capacity; print(json.dumps(sorted(m.name for m in "
            "pkgutil.walk_packages(capacity.__path__, 'capacity.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    # Entry points run a program when imported (the CLI; the locustfile Locust's own
    # processes load with their run's settings): not modules to import alone.
    return ["capacity", *(m for m in json.loads(out.stdout) if m not in ENTRY_POINTS)]


def _in(name: str, layers: tuple[str, ...]) -> bool:
    return any(name == layer or name.startswith(layer + ".") for layer in layers)


def _imported_libs(module: str) -> set[str]:
    """Top-level packages in sys.modules after importing ``module`` alone."""
    code = (f"import sys, json, importlib; importlib.import_module({module!r}); "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, f"importing {module} failed:\n{out.stderr}"
    return set(json.loads(out.stdout))


def _source(module: str) -> Path:
    rel = Path(*module.split(".")[1:])
    path = PKG / rel / "__init__.py"
    return path if path.exists() else (PKG / rel).with_suffix(".py")


def _top_level_imports(module: str) -> list[tuple[str, int]]:
    """Absolute names of the capacity modules ``module`` imports at load time (ignoring
    ``if TYPE_CHECKING:`` blocks and imports inside functions)."""
    if not _source(module).exists():  # a compiled extension: no Python imports to read
        return []
    tree = ast.parse(_source(module).read_text())
    pkg = module if _source(module).name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[str, int]] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                out.extend((a.name, node.lineno) for a in node.names
                           if a.name.split(".")[0] == "capacity")
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                    name = f"{base}.{node.module}" if node.module else base
                else:
                    name = node.module or ""
                if name.split(".")[0] == "capacity":
                    out.append((name, node.lineno))
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                if isinstance(node, ast.Try):
                    for h in node.handlers:
                        visit(h.body)

    visit(tree.body)
    return out


def test_pure_layers_import_no_compiled_or_ui_stack() -> None:
    """profile, model and limits import neither numba, scipy, typer nor rich — checked by
    importing each module alone in a fresh interpreter."""
    mods = [m for m in _modules() if _in(m, PURE_LAYERS)]
    assert "capacity.limits.limiter" in mods and "capacity.model.quota" in mods
    with ThreadPoolExecutor(2) as ex:
        libs = dict(zip(mods, ex.map(_imported_libs, mods), strict=True))
    bad = {m: sorted(set(PURE_FORBIDDEN) & found) for m, found in libs.items()
           if set(PURE_FORBIDDEN) & found}
    assert bad == {}


def test_only_cli_and_render_import_typer_or_rich() -> None:
    """Every module outside capacity.cli and capacity.render imports no typer or rich."""
    mods = [m for m in _modules() if not _in(m, UI_LAYERS)]
    with ThreadPoolExecutor(2) as ex:
        libs = dict(zip(mods, ex.map(_imported_libs, mods), strict=True))
    bad = {m: sorted(set(UI_LIBS) & found) for m, found in libs.items()
           if set(UI_LIBS) & found}
    assert bad == {}


def test_no_module_imports_the_package_root() -> None:
    """``from capacity import …`` inside the package would load the whole facade; modules
    import what they need from where it is defined."""
    bad = [f"{m}:{line}" for m in _modules() if m != "capacity"
           for name, line in _top_level_imports(m) if name == "capacity"]
    assert bad == []


def test_there_is_no_import_cycle() -> None:
    """The load-time import graph between the package's modules is acyclic."""
    mods = set(_modules())

    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {m: {o for n, _ in _top_level_imports(m) if (o := owner(n)) and o != m}
             for m in mods}
    # A package's __init__ importing its own submodules is how packages re-export;
    # a cycle is a module that reaches itself through others.
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def dfs(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = [*stack[stack.index(n):], n]
                if not all(c == n or c.startswith(n + ".") for c in cycle):
                    cycles.append(cycle)
            elif n not in state:
                dfs(n)
        stack.pop()
        state[m] = 2

    for m in sorted(mods):
        if m not in state:
            dfs(m)
    assert cycles == []


def test_walk_finds_every_source_file() -> None:
    """The walk above sees every .py file (none hidden from the layering checks)."""
    files = {".".join(("capacity", *p.relative_to(PKG).with_suffix("").parts))
             .removesuffix(".__init__") for p in PKG.rglob("*.py")
             if "__pycache__" not in p.parts and p.name != "__main__.py"}
    files -= set(ENTRY_POINTS)
    assert files <= set(_modules()) | {"capacity"}
    assert pkgutil.resolve_name("capacity.limits.limiter:Limiter").__name__ == "Limiter"


def test_no_module_imports_scipy() -> None:
    """scipy is no runtime dependency (dev extra only): no import of it anywhere in the
    package, inside functions included — but the test-only scipy.stats twin of a
    distribution (``Distribution.frozen``)."""
    allowed = {("capacity.model.dist", "frozen")}
    bad: list[str] = []
    for m in _modules():
        if not _source(m).exists():
            continue
        tree = ast.parse(_source(m).read_text())
        owners = {id(n): f.name for f in ast.walk(tree)
                  if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                  for n in ast.walk(f)}
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "scipy" for n in names) and (
                    (m, owners.get(id(node))) not in allowed):
                bad.append(f"{m}:{node.lineno}")
    assert bad == []

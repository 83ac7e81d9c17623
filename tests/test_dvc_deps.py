"""Every DVC stage lists exactly the salesjax files its command can run, derived from the code with `ast`.

The closure is taken over names, not whole modules: a stage's root is its command's `run` expression
in cli.py's COMMANDS table (with any "module:function" string in it, the function a stage command
imports when it runs), and from there every global name a definition uses is followed into the
module that defines it (a function, class or constant), through `from ... import` and `module.attr`.
A module's import-time statements other than definitions and imports (e.g. `matplotlib.use`) join
the closure once anything of it is used. So `backtest` importing `REPORTS` from stages.py depends on
stages.py, but not on the training code that other stages run from that module. Local names that
shadow a global count as the global (an over-approximation, never an omission).

Not listed, by design: cli.py (its own lines parse argv and dispatch; which functions it dispatches to
is what this test follows) and package `__init__.py` files (a test below keeps them docstring-only).
"""

import ast
from pathlib import Path
from typing import NamedTuple

import yaml

ROOT = Path(__file__).parents[1]
PACKAGE = "salesjax"
CLI = f"{PACKAGE}.cli"
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


class Module(NamedTuple):
    """One parsed salesjax module: its top-level names, its salesjax imports and import-time code."""

    path: str  # relative to the repository root, as dvc.yaml writes it
    defs: dict[str, ast.stmt]  # top-level name -> the statement that defines it
    imports: dict[str, tuple[str, str | None]]  # local name -> (module, attribute or None for the module)
    body: list[ast.stmt]  # statements run on import that define nothing (calls, ifs, ...)


def _module_name(path: Path) -> str:
    """`salesjax/data/panel.py` -> `salesjax.data.panel` (a package's __init__ names the package)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(stmt: ast.stmt) -> list[str]:
    """Names bound at top level by an assignment statement."""
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _imports(tree: ast.Module, name: str, modules: set[str]) -> dict[str, tuple[str, str | None]]:
    """Local name -> (salesjax module, attribute) for every salesjax import anywhere in the module."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    local = alias.asname or alias.name.split(".")[0]
                    out[local] = (alias.name if alias.asname else PACKAGE, None)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(name.split(".")[: -node.level] + ([base] if base else []))
            if base.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out[alias.asname or alias.name] = (full, None) if full in modules else (base, alias.name)
    return out


def _is_docstring(stmt: ast.stmt) -> bool:
    """Whether a statement is a bare string (or other constant)."""
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


def parse_module(text: str, name: str, path: str, modules: set[str]) -> Module:
    """Parse the source `text` of module `name` (file `path`) into a Module."""
    tree = ast.parse(text)
    defs, body = {}, []
    for stmt in tree.body:
        if isinstance(stmt, DEFINITIONS):
            defs[stmt.name] = stmt
        elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            defs.update(dict.fromkeys(_targets(stmt), stmt))
        elif not isinstance(stmt, ast.Import | ast.ImportFrom) and not _is_docstring(stmt):
            body.append(stmt)
    return Module(path, defs, _imports(tree, name, modules), body)


def load_package() -> dict[str, Module]:
    """Every module of the package by dotted name."""
    paths = sorted((ROOT / PACKAGE).rglob("*.py"))
    names = {_module_name(p) for p in paths}
    return {
        _module_name(p): parse_module(p.read_text(), _module_name(p), p.relative_to(ROOT).as_posix(), names)
        for p in paths
    }


class Closure:
    """The salesjax modules reachable from some roots, following global names."""

    def __init__(self, package: dict[str, Module]):
        """An empty closure over `package`."""
        self.package = package
        self.modules: set[str] = set()
        self.seen: set[tuple[str, str | None]] = set()

    def node(self, module: str, node: ast.AST) -> None:
        """Add everything the global names in `node` (code of `module`) refer to."""
        mod = self.package[module]
        handled = set()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
                target = mod.imports.get(sub.value.id)
                if target is not None and target[1] is None:
                    handled.add(id(sub.value))
                    self.symbol(target[0], sub.attr)
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and id(sub) not in handled:
                if sub.id in mod.defs:
                    self.symbol(module, sub.id)
                elif sub.id in mod.imports:
                    self.symbol(*mod.imports[sub.id])

    def symbol(self, module: str, name: str | None) -> None:
        """Add one name of `module` (None: the whole module) and what it refers to."""
        if (module, name) in self.seen:
            return
        self.seen.add((module, name))
        mod = self.package[module]
        if module not in self.modules:
            self.modules.add(module)
            for stmt in mod.body:
                self.node(module, stmt)
        if name is None:
            for def_name in mod.defs:
                self.symbol(module, def_name)
        elif name in mod.defs:
            self.node(module, mod.defs[name])
        elif name in mod.imports:
            self.symbol(*mod.imports[name])
        elif f"{module}.{name}" in self.package:
            self.symbol(f"{module}.{name}", None)
        else:
            self.symbol(module, None)  # not found statically: the whole module, to be safe


def commands(cli: Module) -> dict[str, ast.expr]:
    """`salesjax <command>` -> the `run` expression of its entry in cli.py's COMMANDS table."""
    table = cli.defs["COMMANDS"].value
    return {key.value: value.args[2] for key, value in zip(table.keys, table.values, strict=True)}


def stage_closure(package: dict[str, Module], run: ast.expr) -> set[str]:
    """Paths of the salesjax files a command's `run` expression can execute, without cli.py and __init__s."""
    closure = Closure(package)
    closure.modules.add(CLI)  # cli's own import-time code only builds the parser
    closure.node(CLI, run)
    for sub in ast.walk(run):
        if isinstance(sub, ast.Constant) and str(sub.value).startswith(f"{PACKAGE}."):
            module, name = sub.value.split(":")
            assert isinstance(package[module].defs.get(name), ast.FunctionDef), f"{sub.value} is no function"
            closure.symbol(module, name)
    paths = {package[m].path for m in closure.modules - {CLI}}
    return {p for p in paths if not p.endswith("__init__.py")}


def listed(deps: list[str], sources: set[str]) -> set[str]:
    """The salesjax source files that a stage's deps cover (a directory covers the files under it)."""
    return {s for s in sources for d in deps if s == d or s.startswith(d.rstrip("/") + "/")}


def dvc_stages() -> dict[str, dict]:
    """dvc.yaml's stages."""
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_every_stage_lists_exactly_the_salesjax_files_its_command_runs():
    package = load_package()
    table = commands(package[CLI])
    sources = {m.path for m in package.values() if not m.path.endswith("__init__.py")}
    problems = []
    for stage, spec in dvc_stages().items():
        program, command, *_ = spec["cmd"].split()
        assert program == PACKAGE and command in table, f"{stage}: cmd is not a salesjax command"
        needed = stage_closure(package, table[command])
        deps = listed(spec.get("deps", []), sources)
        if missing := sorted(needed - deps):
            problems.append(f"{stage} misses {missing}")
        if extra := sorted(deps - needed):
            problems.append(f"{stage} lists {extra}, which its command never runs")
    assert not problems, "; ".join(problems)


def test_package_inits_hold_only_a_docstring():
    for path in (ROOT / PACKAGE).rglob("__init__.py"):
        body = ast.parse(path.read_text()).body
        assert all(_is_docstring(s) for s in body), path


MADE_UP = {  # a made-up package: module name -> source
    "salesjax.a": """
from salesjax import b
from salesjax.c import used

def root():
    return b.f(), used()
""",
    "salesjax.b": """
from salesjax import d, h
d.setup()  # import-time code: runs whenever b is used

def f():
    return 1
""",
    "salesjax.c": """
from salesjax import e
from salesjax.f import g
K = g()

def used():
    return K

def unused():
    return e.x()
""",
    "salesjax.d": "def setup():\n    pass\n",
    "salesjax.e": "def x():\n    return 2\n",
    "salesjax.f": "def g():\n    return 3\n",
    "salesjax.h": "Y = 4\n",
}


def test_closure_follows_used_names_transitively_and_skips_unused_ones():
    names = set(MADE_UP)
    package = {n: parse_module(text, n, n, names) for n, text in MADE_UP.items()}
    closure = Closure(package)
    closure.symbol("salesjax.a", "root")
    # d through b's import-time call; c only through `used`, which reaches f via the constant K;
    # e only from `unused`, and h is imported by b but no name of it is used.
    assert closure.modules == {"salesjax.a", "salesjax.b", "salesjax.c", "salesjax.d", "salesjax.f"}
    closure.symbol("salesjax.c", None)
    assert "salesjax.e" in closure.modules and "salesjax.h" not in closure.modules

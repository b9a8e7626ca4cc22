"""The code keeps its shape: small files, small classes, imports that only go down.

* No file under sidecar/ is longer than 500 lines, and no class has more than 25 methods
  (functions defined directly in the class body, properties included).
* The runtime import graph of sidecar/ has no cycle. Imports under ``if TYPE_CHECKING:`` are not
  run, so they do not count; ``from pkg import submodule`` counts as importing the submodule.
* Imports follow the layers of docs/architecture.md: the protocol packages (hap/, hds/, media/)
  stand alone on the shared leaves, camera/ sits on them, and triggers/ and web/ reach a camera
  only through camera/'s interface.

The graph is read from the source with ``ast``, not by importing, so a lazy import inside a
function counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sidecar"

MAX_LINES = 500
MAX_METHODS = 25

# Known violators of the limits, to be fixed; each entry goes as soon as its file or class is
# back under the limit. The goal is an empty allowlist.
ALLOWED_LONG_FILES: set[str] = set()
ALLOWED_BIG_CLASSES: set[str] = set()

# Modules every layer may import: the version, the TLV8 codec, the shared connection limiter, the
# log redactor, the atomic private-file write and the on-demand worker thread. They import nothing
# from sidecar/ themselves.
LEAVES = {"sidecar", "sidecar.tlv8", "sidecar.connection_limiter", "sidecar.redact", "sidecar.atomic_file",
          "sidecar.worker_thread", "sidecar.malloc_tuning"}

# What each part of sidecar/ must never import, by top-level part ("app", "config*" is every
# config module, a package name is the whole package). Parts not listed here (cli, app, config*,
# control/, archive/) are the wiring on top and may import what they need; control/ builds an
# App for the parent process, so control -> app is a downward import.
PROTOCOL_PACKAGES = {"hap", "hds", "media"}
APPLICATION = {"camera", "triggers", "web", "control", "archive", "app", "cli", "config*"}
FORBIDDEN: dict[str, set[str]] = {
    # The protocol packages serve every camera and know nothing of HKSV or the application.
    "hap": (PROTOCOL_PACKAGES - {"hap"}) | APPLICATION,
    "hds": (PROTOCOL_PACKAGES - {"hds"}) | APPLICATION,
    "media": (PROTOCOL_PACKAGES - {"media"}) | APPLICATION,
    # camera/ sits on the protocol packages and is used by the application, never the reverse.
    "camera": {"triggers", "web", "control", "archive", "app", "cli", "config*"},
    # Motion inputs reach a camera through its interface (camera/), never its protocol servers.
    "triggers": {"hap", "hds", "web", "control", "app", "cli"},
    # The web server reads cameras through camera/ too.
    "web": {"hap", "hds", "control", "app", "cli"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for branch in node.orelse:
                yield branch
                yield from _runtime_nodes(branch)
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(module: str, path: Path, modules: set[str]) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: -(node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names} & modules
            found |= submodules
            if target in modules and len(submodules) < len(node.names):
                found.add(target)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names} & modules
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    sources = _sources()
    return {module: _imports(module, path, set(sources)) for module, path in sources.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _part(module: str) -> str:
    """The top-level part of sidecar/ a module belongs to: a package name, "app", "config*"..."""
    name = module.split(".")[1] if "." in module else module
    return "config*" if name.startswith("config") else name


def test_no_file_is_longer_than_the_limit() -> None:
    long = {p.relative_to(ROOT).as_posix(): n for p in _sources().values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert set(long) - ALLOWED_LONG_FILES == set(), long
    assert ALLOWED_LONG_FILES - set(long) == set(), "fixed: take them off ALLOWED_LONG_FILES"


def test_no_class_has_more_methods_than_the_limit() -> None:
    big: dict[str, int] = {}
    for module, path in _sources().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                methods = sum(isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef) for s in node.body)
                if methods > MAX_METHODS:
                    big[f"{module}.{node.name}"] = methods
    assert set(big) - ALLOWED_BIG_CLASSES == set(), big
    assert ALLOWED_BIG_CLASSES - set(big) == set(), "fixed: take them off ALLOWED_BIG_CLASSES"


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_submodule_imports_and_skips_type_checking_ones() -> None:
    graph = import_graph()
    # `from .. import __version__` is the package; `from ..hap import catalog`-style names the module.
    assert "sidecar" in graph["sidecar.cli"]
    # sidecar/__init__ names App only for the type checker, and loads it lazily by name.
    assert "sidecar.app" not in graph["sidecar"]
    assert graph["sidecar.__main__"] == {"sidecar.cli"}


def test_imports_go_only_down_the_layers() -> None:
    wrong = sorted(
        (module, target)
        for module, targets in import_graph().items()
        for target in targets
        if target not in LEAVES and _part(target) in FORBIDDEN.get(_part(module), set())
    )
    assert wrong == []


def test_the_protocol_packages_import_only_themselves_and_the_leaves() -> None:
    wrong = sorted(
        (module, target)
        for module, targets in import_graph().items()
        if _part(module) in PROTOCOL_PACKAGES
        for target in targets
        if target not in LEAVES and _part(target) != _part(module)
    )
    assert wrong == []


def test_the_leaves_import_nothing_from_the_package() -> None:
    graph = import_graph()
    assert {leaf: graph[leaf] for leaf in LEAVES - {"sidecar"} if graph[leaf]} == {}

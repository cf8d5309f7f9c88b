"""The package's folders are layers: a module imports only from its own layer or lower ones (function-level imports
included), and no two modules import each other, directly or round about."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "loadgen"
LAYERS = ["errors", "runtime", "config", "workload", "milvus", "stats", "clients", "locust", "web", "users", "report",
          "cli"]  # fmt: skip
RANK = {name: i for i, name in enumerate(LAYERS)} | {"errors": 0, "runtime": 0}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("loadgen")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("loadgen"):
            found |= {f"{node.module}.{a.name}" for a in node.names} if node.module == "loadgen" else {node.module}
    return found


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def test_no_module_imports_a_higher_layer() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        own = layer(module_name(path))
        if own is None:
            continue  # loadgen/__init__.py: the public names, loaded lazily
        for target in imports(path):
            theirs = layer(target)
            if theirs is not None and RANK[theirs] > RANK[own]:
                wrong.append(f"{module_name(path)} ({own}) imports {target} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_no_import_circles() -> None:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    graph = {m: {t for x in imports(p) if (t := resolve(x)) and t != m} for m, p in modules.items()}
    graph = {m: {t for t in ts if not m.startswith(t + ".") and t != "loadgen"} for m, ts in graph.items()}
    seen: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(m: str, path: list[str]) -> None:
        seen[m] = 1
        for t in graph.get(m, ()):
            assert seen.get(t) != 1, "import circle: " + " -> ".join([*path, m, t])
            if t not in seen:
                visit(t, [*path, m])
        seen[m] = 2

    for m in graph:
        if m not in seen:
            visit(m, [])

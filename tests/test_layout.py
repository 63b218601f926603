"""The package's rooms keep their arrows: the runtime never imports the development stack or the
emulator, the protocol's facts import nothing of the client, and no modules import each other
in a circle, not even for types."""

from __future__ import annotations

import ast
from pathlib import Path

import warmrtc

PACKAGE = Path(warmrtc.__file__).parent
# The command line and the development tools may use everything; nothing else may use them.
TOOLS = ("warmrtc.local", "warmrtc.emulator", "warmrtc.cli", "warmrtc.__main__")


def module_name(path: Path) -> str:
    parts = ("warmrtc", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, *, typing: bool = False) -> set[str]:
    """The modules ``path`` imports at module level (what running it imports; ``typing``: and
    what it imports for the type checker)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) and not typing:
            continue
        for inner in ast.walk(node) if isinstance(node, ast.If | ast.Try) else [node]:
            if isinstance(inner, ast.Import):
                found |= {alias.name for alias in inner.names}
            elif isinstance(inner, ast.ImportFrom):
                base = inner.module or ""
                if inner.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - inner.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.add(base)
                found |= {f"{base}.{alias.name}" for alias in inner.names}
    return {m for m in found if m.startswith("warmrtc")}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def graph(*, typing: bool = False) -> dict[str, set[str]]:
    return {
        name: {m for m in imports(path, typing=typing) if m in MODULES and m != name}
        for name, path in MODULES.items()
    }


GRAPH = graph()


def is_tool(name: str) -> bool:
    return any(name == tool or name.startswith(tool + ".") for tool in TOOLS)


def test_the_runtime_never_imports_the_development_tools() -> None:
    runtime = [name for name in MODULES if not is_tool(name)]
    assert "warmrtc.session" in runtime and "warmrtc.local.stack" not in runtime
    wrong = {name: sorted(filter(is_tool, GRAPH[name])) for name in runtime}
    assert not {name: used for name, used in wrong.items() if used}


def test_the_protocol_facts_import_nothing_of_the_client() -> None:
    for name in (m for m in MODULES if m.startswith("warmrtc._protocol")):
        allowed = {m for m in GRAPH[name] if m.startswith(("warmrtc._protocol", "warmrtc.errors"))}
        assert GRAPH[name] <= allowed, (name, sorted(GRAPH[name] - allowed))


def test_no_modules_import_each_other_in_a_circle() -> None:
    # Types count too: two modules that need each other's names are one idea cut in two.
    edges = graph(typing=True)
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = "open"
        path.append(name)
        for nxt in sorted(edges[name]):
            if nxt == "warmrtc" or name == "warmrtc":
                continue  # the package's face imports everything; nothing imports it back
            assert state.get(nxt) != "open", " -> ".join([*path[path.index(nxt) :], nxt])
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[name] = "done"

    for name in sorted(MODULES):
        if name not in state:
            visit(name)


# The floors of the package, lowest first: a module imports its own floor and those below it,
# never one above (docs/architecture.md draws them).
FLOORS = [
    ("facts", ["warmrtc._version", "warmrtc._core", "warmrtc._trace"]),
    (
        "values",
        ["warmrtc.state", "warmrtc.stats", "warmrtc.latency", "warmrtc.errors", "warmrtc.events"],
    ),
    ("protocol", ["warmrtc._protocol"]),
    ("options", ["warmrtc.config"]),
    ("media", ["warmrtc._media"]),
    ("source", ["warmrtc.source", "warmrtc.budget", "warmrtc._service_http"]),
    ("session parts", ["warmrtc._session"]),
    (
        "faces",
        [
            "warmrtc.session",
            "warmrtc.watch",
            "warmrtc.tokens",
            "warmrtc.pool",
            "warmrtc.redis_budget",
            "warmrtc.check",
            "warmrtc.blocking",
        ],
    ),
    ("package", ["warmrtc"]),
    ("tools", ["warmrtc.local", "warmrtc.emulator", "warmrtc.cli", "warmrtc.__main__"]),
]


def floor_of(name: str) -> int:
    best = (-1, -1)  # (length of the prefix that matched, floor)
    for number, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = (len(prefix), number)
    assert best[1] >= 0, f"{name} is on no floor: add it to FLOORS (and to the architecture)"
    return best[1]


def test_every_module_imports_only_its_floor_and_those_below() -> None:
    edges = graph(typing=True)
    upward = {
        (name, used)
        for name, uses in edges.items()
        for used in uses
        if floor_of(used) > floor_of(name) and used != "warmrtc"
    }
    assert not upward, sorted(upward)

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import corpora
from corpora.records import Corpus
from corpora.registry import CORPORA, Registry
from corpora.retrieval.factory import RETRIEVERS

TABLE = {"indent": "textwrap:indent", "dedent": "textwrap:dedent"}


def import_graph(package_dir: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package's modules its source imports (anywhere, lazy imports too).

    A submodule's import of its parent packages' ``__init__`` is Python's doing, not an edge.
    """
    modules = {}
    for path in package_dir.rglob("*.py"):
        parts = (package, *path.relative_to(package_dir).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    graph = {}
    for name, (path, is_package) in modules.items():
        targets = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: climb from this module's package
                    here = name.split(".")[: name.count(".") + 1 + is_package - node.level]
                    base = ".".join([*here, base] if base else here)
                # `from pkg import sub` imports the submodule pkg.sub when there is one.
                targets += [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                            for a in node.names]
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or None when the graph has none."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                return path[path.index(nxt):] + [nxt]
            if nxt not in done and (cycle := visit(nxt)):
                return cycle
        done.add(path.pop())
        return None

    return next((c for n in sorted(graph) if n not in done and (c := visit(n))), None)


def test_corpora_import_graph_has_no_cycle():
    graph = import_graph(Path(corpora.__file__).parent, "corpora")
    assert {"corpora.records", "corpora.formats.jsonio"} <= graph["corpora.formats.jsonl"]
    assert "corpora.registry" in graph["corpora.retrieval.factory"]
    assert find_cycle(graph) is None


def test_cycle_finder_sees_relative_and_lazy_imports(tmp_path):
    # The control: a cycle like the one the corpus registry had (one side imports lazily).
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from . import b\n")
    (tmp_path / "pkg" / "b.py").write_text("def f():\n    import pkg.a\n")
    (tmp_path / "pkg" / "c.py").write_text("from pkg.b import f\n")
    graph = import_graph(tmp_path / "pkg", "pkg")
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": {"pkg.b"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]


def test_import_corpora_imports_no_loader_or_heavy_backend():
    heavy = ("corpora.formats", "corpora.synthetic", "bm25s", "faiss", "sentence_transformers",
             "torch", "rank_bm25")
    code = f"import sys, corpora; print([m for m in sys.modules if m.startswith({heavy})])"
    root = Path(corpora.__file__).parent.parent
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         check=True)
    assert run.stdout.strip() == "[]"


def test_names_resolve_from_entry_points_and_module_function_names():
    registry = Registry("thing", TABLE)
    assert registry.names() == ["dedent", "indent"]
    assert registry.build("indent", "a\nb", prefix="> ") == "> a\n> b"
    assert registry.resolve("textwrap:fill") is textwrap.fill  # needs no registration


@pytest.mark.parametrize("registry", [CORPORA, RETRIEVERS], ids=lambda r: r.kind)
def test_every_builtin_entry_point_resolves(registry):
    assert all(callable(registry.resolve(name)) for name in registry.names())


def test_unknown_names_and_options_get_close_matches():
    registry = Registry("thing", TABLE)
    with pytest.raises(ValueError, match=r"unknown thing 'indnt'; known things: dedent, "
                                         r"indent .*module:function'\)\. Did you mean 'indent'"):
        registry.resolve("indnt")
    with pytest.raises(TypeError, match=r"unknown option 'prefx' for thing 'indent'; allowed "
                                        r"options: text, prefix, predicate\. Did you mean"):
        registry.build("indent", "a", prefx="> ")
    with pytest.raises(ValueError, match=r"no module 'textwrapp' in the working directory or the "
                                         r"installed packages; spell an entry point"):
        registry.resolve("textwrapp:fill")
    with pytest.raises(ValueError, match="'textwrap' has no callable 'fil'; spell"):
        registry.resolve("textwrap:fil")
    with pytest.raises(ValueError, match="bad entry point"):
        registry.resolve("textwrap:")


def test_missing_dependency_inside_an_entry_point_module_keeps_its_error(tmp_path, monkeypatch):
    (tmp_path / "needs_dep.py").write_text("import not_installed_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="not_installed_dependency_xyz"):
        Registry("thing", {}).resolve("needs_dep:load")


def test_register_refuses_a_taken_name_for_another_target(monkeypatch):
    registry = Registry("thing", TABLE)
    registry.register("dedent", textwrap.dedent)  # the same target, as a callable
    registry.register("fill", textwrap.fill)
    assert registry.resolve("fill") is textwrap.fill
    with pytest.raises(ValueError, match="'dedent' is already registered to 'textwrap:dedent'"):
        registry.register("dedent", textwrap.indent)
    monkeypatch.setattr(CORPORA, "_entries", dict(CORPORA._entries))  # keep the table clean
    mine = Corpus("mine", ())
    corpora.register_corpus("mine")(lambda: mine)
    assert "mine" in corpora.available() and corpora.load("mine") is mine

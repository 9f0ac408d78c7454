"""The house rules of docs/architecture.md, checked on the source tree.

The layer contract itself (which layer may import which) is import-linter's, configured in
pyproject.toml; here it runs as a test too. The rest are what import-linter cannot see: no
layer imports another layer's private names, and no file outgrows its room.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "lucidvi"
MAX_LINES = 500
MAX_LINES_IN_MODEL = 400


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, package_root: Path) -> list[tuple[int, str, list[str]]]:
    """Every ``(line, absolute module, imported names)`` of a file, nested imports included."""
    module = _module_name(path, package_root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([target] if target else []))
            found.append((node.lineno, target, [alias.name for alias in node.names]))
    return found


def private_imports(path: Path, package: Path = PACKAGE) -> list[str]:
    """Imports of another layer's private modules or names, as ``file:line: what``."""
    own = _module_name(path, package).split(".")
    room = own[1] if len(own) > 1 else own[0]
    problems = []
    for line, target, names in _imports(path, package):
        parts = target.split(".")
        if parts[0] != "lucidvi" or len(parts) < 2 or parts[1] == room:
            continue
        is_subpackage = (package / parts[1]).is_dir()
        private_path = [p for p in parts[2:] if p.startswith("_")] if is_subpackage else []
        private_names = [n for n in names if n.startswith("_")]
        if private_path or private_names:
            where = f"{path.relative_to(package.parent)}:{line}"
            problems.append(f"{where}: {target} import {', '.join(names) or '*'}")
    return problems


def test_no_layer_imports_another_layers_private_names():
    problems = [problem for path in _sources() for problem in private_imports(path)]
    assert problems == [], "\n".join(problems)


def test_the_private_import_check_sees_relative_nested_and_type_checking_imports(tmp_path):
    package = tmp_path / "src" / "lucidvi"
    (package / "interpretation").mkdir(parents=True)
    source = package / "interpretation" / "_example.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from ..metrics import clustering_scores\n"
        "from ._core import helper\n"
        "from lucidvi._constants import RECEIVER_INDEX_KEY\n"
        "if TYPE_CHECKING:\n"
        "    from lucidvi.model._interaction_vi import InteractionVI\n"
        "def f():\n"
        "    from ..logging import _require_wandb\n"
    )
    (package / "model").mkdir()
    (package / "metrics").mkdir()
    problems = private_imports(source, package)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "lucidvi.model._interaction_vi import InteractionVI",
        "lucidvi.logging import _require_wandb",
    ]


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_files_stay_within_their_size(path):
    limit = MAX_LINES_IN_MODEL if "model" in path.relative_to(PACKAGE).parts[:1] else MAX_LINES
    n_lines = len(path.read_text().splitlines())
    assert n_lines <= limit, f"{path.name} has {n_lines} lines (at most {limit})"


def test_the_layer_contract_holds():
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0

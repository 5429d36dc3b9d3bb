"""Small units: no function over 40 lines and no class over 200 lines in the package."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "procrun"


def units():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield path.relative_to(PACKAGE), node, node.end_lineno - node.lineno + 1


def test_functions_at_most_40_lines():
    long = [f"{path}:{node.lineno} {node.name} ({n} lines)" for path, node, n in units()
            if not isinstance(node, ast.ClassDef) and n > 40]
    assert long == []


def test_classes_at_most_200_lines():
    long = [f"{path}:{node.lineno} {node.name} ({n} lines)" for path, node, n in units()
            if isinstance(node, ast.ClassDef) and n > 200]
    assert long == []

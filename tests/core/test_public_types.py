"""The packages a user imports from declare their exports as type checkers read them.

mypy --strict (no implicit re-export) and pyright take a package's exports only from a literal
`__all__`; `wia_security.model` computed its list from dir(), so `from wia_security.model import
AlertData` failed a user's `mypy --strict` with "does not explicitly export attribute".
"""
from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

PACKAGES = ["wia_security", "wia_security.model", "wia_security.builders"]


def _literal_all(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            assert isinstance(node.value, ast.List), f"{module_name}.__all__ is computed, not a literal list"
            return [ast.literal_eval(e) for e in node.value.elts]
    raise AssertionError(f"{module_name} has no __all__")


@pytest.mark.parametrize("module_name", PACKAGES)
def test_exports_are_a_literal_list_of_existing_public_names(module_name):
    names = _literal_all(module_name)
    module = importlib.import_module(module_name)
    assert len(names) == len(set(names))
    assert all(hasattr(module, n) for n in names)
    assert not [n for n in names if inspect.ismodule(getattr(module, n))]      # no submodules exported


def test_every_model_class_is_exported():
    model = importlib.import_module("wia_security.model")
    base = model.Record
    classes = {name for name, obj in vars(model).items() if isinstance(obj, type) and issubclass(obj, base)}
    assert classes <= set(_literal_all("wia_security.model"))

"""Fixtures for the Splunk app: the app source tree, its parsed .conf files, the built package."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP_SRC = ROOT / "splunk_app" / "wia_security"


def _load_build():
    spec = importlib.util.spec_from_file_location("wia_splunk_build", ROOT / "splunk_app" / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["wia_splunk_build"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def app_build():
    return _load_build()


@pytest.fixture(scope="session")
def built_app(tmp_path_factory, app_build):
    """(app tree, package path): the app exactly as `make dist` builds it (vendored core + libraries)."""
    out = tmp_path_factory.mktemp("splunk_app")
    tree = app_build.build_tree(out / "tree")
    return tree, app_build.package(tree, out / "dist")

"""Maps the one import root onto the repository layout: wia_security = core/, wia_security.connectors = connectors/."""
from setuptools import find_packages, setup

packages = ["wia_security", *(f"wia_security.{p}" for p in find_packages("core"))]
packages += ["wia_security.connectors", *(f"wia_security.connectors.{p}" for p in find_packages("connectors"))]

setup(
    packages=packages,
    package_dir={"wia_security": "core", "wia_security.connectors": "connectors"},
)

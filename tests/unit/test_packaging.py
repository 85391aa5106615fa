"""What the package index and catkin see: setup.py's metadata, one version everywhere, and a
description whose images the index page can show."""

from __future__ import annotations

import runpy
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import setuptools

import pyros
from pyros.cli import DISTRIBUTION

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup_kwargs() -> dict[str, Any]:
    """setup()'s keyword arguments, recorded the way catkin reads them."""
    captured: dict[str, Any] = {}
    original = setuptools.setup
    setuptools.setup = lambda **kwargs: captured.update(kwargs)  # type: ignore[assignment]
    try:
        runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup = original
    return captured


def test_one_version_and_a_name_that_is_not_the_original_pyros(
    setup_kwargs: dict[str, Any],
) -> None:
    package_xml = ET.parse(ROOT / "package.xml").getroot()
    assert setup_kwargs["version"] == package_xml.findtext("version") == pyros.__version__
    # "pyros" on the package index is the original Pyros (0.1.0 to 0.4.3).
    assert setup_kwargs["name"] == DISTRIBUTION == "pyros-robot"
    major, minor, _ = (int(part) for part in pyros.__version__.split("."))
    assert (major, minor) > (0, 4), "the version must not read as the original Pyros's"


def test_metadata_is_complete(setup_kwargs: dict[str, Any]) -> None:
    for key in ("description", "license", "maintainer", "maintainer_email", "keywords"):
        assert setup_kwargs.get(key), key
    assert setup_kwargs["project_urls"]
    classifiers = setup_kwargs["classifiers"]
    assert any(c.startswith("Development Status ::") for c in classifiers)
    assert any(c.startswith("License ::") for c in classifiers)
    assert setup_kwargs["entry_points"]["console_scripts"] == ["pyros = pyros._cli.entry:main"]
    assert "pyyaml" in setup_kwargs["install_requires"]


def test_the_index_description_has_no_repository_relative_images(
    setup_kwargs: dict[str, Any],
) -> None:
    assert ".. image:: benchmarks" in (ROOT / "README.rst").read_text()
    description = setup_kwargs["long_description"]
    for line in description.splitlines():
        if line.startswith(".. image::"):
            assert "://" in line, line
    assert ":alt: latency distributions" not in description
    assert "Benchmarks" in description

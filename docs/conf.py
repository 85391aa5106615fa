"""Sphinx configuration of the pyros documentation (built by scripts/docs, warnings as errors)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import pyros  # noqa: E402

project = "pyros"
author = "pyros maintainers"
copyright = "the pyros maintainers"  # noqa: A001
release = pyros.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_click",
]
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Optional libraries of the cloud side and the ROS backends are not needed to read the API.
autodoc_mock_imports = ["rospy", "rclpy", "roslibpy", "genpy", "rosgraph", "nicegui"]
nitpicky = False
suppress_warnings = ["ref.python"]

html_theme = "furo"
html_title = f"pyros {release}"
html_static_path: list[str] = []
exclude_patterns = ["_build"]

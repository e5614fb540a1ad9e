"""Sphinx configuration for the spead2-for-asyncio documentation.

Build with ``bash scripts/docs.sh`` (warnings are errors). Some content is
decided at build time rather than written into the pages:

* optional pages written elsewhere in the project (``performance.md``,
  ``robustness.md``) are linked, or included, only when they exist, so the
  site builds cleanly before they land;
* the lossless-rate plot is drawn from ``_data/lossless_rate.csv`` by
  ``make_plots.py`` when that file holds measurements, and the performance
  page's headline chart and table from ``_data/headline.csv``;
* ``.. remaining-members::`` documents every public name of a module that an
  API page does not list by name, so nothing public goes undocumented;
* ``.. command-help::`` shows a command-line tool's ``--help`` as the code
  has it.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))

import make_plots  # noqa: E402  (needs DOCS on sys.path)

project = "spead2 for asyncio"
author = "the aiospead2 developers"
copyright = "the aiospead2 developers"
# The package's own version (spead2.__version__ is the reference API it implements).
with (ROOT / "pyproject.toml").open("rb") as _f:
    release = version = tomllib.load(_f)["project"]["version"]
del _f

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "_data",
    # Included into performance_page.md (when it exists), not a page of its own.
    "performance.md",
]
templates_path: list[str] = []

html_theme = "furo"
html_title = "spead2 for asyncio"
html_static_path = ["_static"]
html_css_files = ["custom.css"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    "member-order": "groupwise",
}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
napoleon_google_docstring = True
napoleon_numpy_docstring = True

# -- pages that appear only once their file exists ----------------------------------------

#: Markdown pages other parts of the project write; each is listed in the
#: index toctree and dropped from it while the file does not exist.
OPTIONAL_PAGES = ("robustness",)

PERFORMANCE_REPORT = DOCS / "performance.md"
PLOT_DATA = DOCS / "_data" / "lossless_rate.csv"
PLOT_OUTPUT = DOCS / "_generated" / "lossless_rate.svg"

_REPORT_MARKER = "<!-- performance-report -->"
_PLOT_MARKER = "<!-- lossless-rate-plot -->"
_HEADLINE_CHART_MARKER = "<!-- headline-chart -->"
_HEADLINE_TABLE_MARKER = "<!-- headline-table -->"


def _headline_chart_block(have_chart: bool) -> str:
    if not have_chart:
        return ":::{note}\nThe headline figures are pending: `docs/_data/headline.csv` is missing.\n:::\n"
    return (
        "```{figure} _generated/headline.svg\n:alt: This package's speed relative to the "
        "C++-backed spead2, per workload\n\nThis package's figure divided by the C++-backed "
        "spead2's, per workload, on the same machine in the same run (higher is faster; "
        "data: `docs/_data/headline.csv`).\n```\n"
    )


def _report_block() -> str:
    if PERFORMANCE_REPORT.exists():
        return "```{include} performance.md\n:heading-offset: 1\n```\n"
    return (
        ":::{note}\nThe benchmark report (`docs/performance.md`, written with the "
        "benchmarks) is pending: it appears here once it exists.\n:::\n"
    )


def _plot_block(have_plot: bool) -> str:
    if have_plot:
        return (
            "```{figure} _generated/lossless_rate.svg\n:alt: Lossless rate against packet "
            "size for both implementations\n\nHighest rate received without loss, by packet "
            "size, for this package and the C++-backed reference (data: "
            "`docs/_data/lossless_rate.csv`).\n```\n"
        )
    return (
        ":::{note}\nFigures are pending: `docs/_data/lossless_rate.csv` holds no "
        "measurements yet. The plot is drawn from it as soon as it does.\n:::\n"
    )


def _on_builder_inited(app: Any) -> None:
    app.env.spead2_have_plot = make_plots.make_plot(PLOT_DATA, PLOT_OUTPUT)
    app.env.spead2_have_headline = make_plots.make_ratio_plot(
        make_plots.HEADLINE_DATA, make_plots.HEADLINE_OUTPUT
    )


def _on_source_read(app: Any, docname: str, source: list[str]) -> None:
    if docname == "index":
        for page in OPTIONAL_PAGES:
            if not (DOCS / f"{page}.md").exists():
                source[0] = re.sub(rf"^[ \t]*{page}[ \t]*\n", "", source[0], flags=re.MULTILINE)
    elif docname == "performance_page":
        have_plot = getattr(app.env, "spead2_have_plot", False)
        have_headline = getattr(app.env, "spead2_have_headline", False)
        table = make_plots.headline_table() if have_headline else ""
        source[0] = (
            source[0]
            .replace(_REPORT_MARKER, _report_block())
            .replace(_PLOT_MARKER, _plot_block(have_plot))
            .replace(_HEADLINE_CHART_MARKER, _headline_chart_block(have_headline))
            .replace(_HEADLINE_TABLE_MARKER, table)
        )


# -- API pages: nothing public goes undocumented ---------------------------------------------


def public_names(module_name: str) -> list[str]:
    """The public classes and functions of a module: its ``__all__``, else what it defines."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n for n, obj in vars(module).items()
            if getattr(obj, "__module__", None) == module_name
        ]
    return [
        n for n in names
        if not n.startswith("_")
        and (inspect.isclass(getattr(module, n)) or inspect.isfunction(getattr(module, n)))
    ]


_DOCUMENTED = re.compile(r"^\.\. (?:auto)?(?:class|exception|function)::\s+(?:[\w.]+\.)?(\w+)", re.M)


class RemainingMembers(SphinxDirective):
    """``.. remaining-members:: module``: autodoc every public class or function of
    ``module`` that the page does not document explicitly, under an "Other names" rubric
    (``:no-rubric:`` leaves it out, to place the names in a section of the page).

    The curated sections above it stay hand-ordered, and a name added to the
    package later still appears in the reference until someone files it
    under the right heading.
    """

    required_arguments = 1
    option_spec = {"no-rubric": directives.flag}

    def run(self) -> list[nodes.Node]:
        module_name = self.arguments[0]
        page = Path(self.env.doc2path(self.env.docname)).read_text()
        documented = set(_DOCUMENTED.findall(page))
        module = importlib.import_module(module_name)
        # Re-read this page when the module's exports change.
        if module.__file__:
            self.env.note_dependency(module.__file__)
        lines = []
        for name in public_names(module_name):
            if name in documented:
                continue
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                kind = "autofunction"
            elif issubclass(obj, BaseException):
                kind = "autoexception"
            else:
                kind = "autoclass"
            lines.append(f".. {kind}:: {module_name}.{name}")
            if kind == "autoclass":
                # (Options must follow the directive line directly.)
                lines.append("   :inherited-members:")
            lines.append("")
        if not lines:
            return []
        container = nodes.container()
        if "no-rubric" not in self.options:
            lines = [".. rubric:: Other names", "", *lines]
        content = StringList(lines, source=self.env.docname)
        self.state.nested_parse(content, self.content_offset, container)
        return list(container.children)


# -- command-line tools: their --help, as the code has it ---------------------------------


class CommandHelp(SphinxDirective):
    """``.. command-help:: spead2.tools.capture``: the tool's ``--help`` output,
    produced at build time so the page always matches the code. Further
    arguments come before ``--help`` (``.. command-help:: spead2.tools.bench master``)."""

    required_arguments = 1
    optional_arguments = 3

    def run(self) -> list[nodes.Node]:
        spec = importlib.util.find_spec(self.arguments[0])
        if spec is not None and spec.origin:
            self.env.note_dependency(spec.origin)
        env = dict(os.environ, COLUMNS="88", PYTHONPATH=str(ROOT))
        result = subprocess.run(
            [sys.executable, "-m", *self.arguments, "--help"],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False,
        )
        if result.returncode != 0:
            raise self.error(f"{self.arguments[0]} --help failed: {result.stderr.strip()}")
        block = nodes.literal_block(result.stdout, result.stdout)
        block["language"] = "text"
        return [block]


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("remaining-members", RemainingMembers)
    app.add_directive("command-help", CommandHelp)
    app.connect("builder-inited", _on_builder_inited)
    app.connect("source-read", _on_source_read)
    # Pages whose content depends on files outside them are always re-read.
    app.connect("env-get-outdated", lambda app, env, added, changed, removed: ["index", "performance_page"])
    return {"parallel_read_safe": True}

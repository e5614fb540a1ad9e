"""The documentation site builds cleanly, and every code sample on it runs.

* The site is built with ``sphinx -W`` (warnings are errors) into a temporary
  directory, as ``scripts/docs.sh`` builds it.
* Every Markdown page's fenced ```` ```python ```` blocks are joined, in page
  order, into one program, which runs in a subprocess from the repository
  root (so ``examples/`` is importable), with a time limit. Its standard
  output must match the page's ```` ```output ```` blocks, joined the same way
  (doctest rules: ``...`` matches anything, whitespace differences are
  ignored). A line ``PORT = 8888`` is given a free port instead, so that runs
  never collide; everything else runs exactly as shown. Shell commands are
  ```` ```console ```` blocks and are not run; literal-included files are
  run by :func:`test_included_example_runs`.
* Every file under ``examples/`` that a page includes is run, bounded, and
  must succeed.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RUN_TIMEOUT = 60

PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)

#: How to run each example a page includes: arguments ({port} = a free port)
#: and a phrase its output must contain. An entry of None means a page's own
#: code already runs the example (named in the comment).
EXAMPLE_RUNS: dict[str, tuple[list[str], str] | None] = {
    "examples/substreams.py": (["--port", "{port}", "--groups", "2"], "received heaps"),
    "examples/memory_pool.py": (["--heaps", "3", "--heap-size", "65536"], "received 3 heaps"),
    "examples/chunk_receive.py": (["--heaps", "64", "--drop", "10"], "complete heaps"),
    "examples/web_service.py": None,  # docs/tutorials/web_service.md runs make_app()
    "examples/fastapi_service.py": None,  # so does it this one's
    "examples/live_source.py": None,  # imported by the two above
}

_FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(info, body)`` of every fenced block of a Markdown page, in order."""
    blocks = []
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i].rstrip("\n"))
        if not match:
            i += 1
            continue
        fence, info = match.group(1), match.group(2).strip()
        body = []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                break
            body.append(lines[i])
            i += 1
        blocks.append((info, "".join(body)))
        i += 1
    return blocks


def literal_includes(text: str) -> list[str]:
    """Repository-relative paths of the files a page includes with ``literalinclude``."""
    paths = []
    for info, _ in fenced_blocks(text):
        match = re.match(r"\{literalinclude\}\s+(\S+)", info)
        if match:
            paths.append(match.group(1))
    return paths


def free_port() -> int:
    """A port free on 127.0.0.1 for UDP and TCP, together with the port after it."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        try:
            for candidate in (port, port + 1):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of ports found")


def run_python(args: list[str], timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )


# -- the fence parser itself -------------------------------------------------------------


def test_fenced_blocks_parser() -> None:
    text = (
        "intro\n```python\nx = 1\n```\n\n````{literalinclude} ../a.py\n:pyobject: f\n````\n"
        "```output\n1\n```\n~~~console\n$ ls\n~~~\n"
    )
    assert fenced_blocks(text) == [
        ("python", "x = 1\n"),
        ("{literalinclude} ../a.py", ":pyobject: f\n"),
        ("output", "1\n"),
        ("console", "$ ls\n"),
    ]
    assert literal_includes(text) == ["../a.py"]


# -- code samples ------------------------------------------------------------------------


def _page_id(page: Path) -> str:
    return str(page.relative_to(DOCS))


PAGES_WITH_CODE = [
    p for p in PAGES if any(info == "python" for info, _ in fenced_blocks(p.read_text()))
]


def test_tutorial_pages_have_code() -> None:
    """Every tutorial, the front page and the migration guide are runnable."""
    with_code = {_page_id(p) for p in PAGES_WITH_CODE}
    expected = {_page_id(p) for p in (DOCS / "tutorials").glob("*.md")}
    expected |= {"index.md", "migration.md", "concepts/spead.md", "concepts/packets.md"}
    assert expected <= with_code, expected - with_code


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=_page_id)
def test_page_code_runs(page: Path, tmp_path: Path) -> None:
    blocks = fenced_blocks(page.read_text())
    if any("import aiohttp" in body for info, body in blocks if info == "python"):
        pytest.importorskip("aiohttp", reason="the page's code needs aiohttp")
    code = "\n\n".join(body for info, body in blocks if info == "python")
    code = re.sub(r"^PORT = 8888\b", f"PORT = {free_port()}", code, flags=re.MULTILINE)
    # (Prefixed, so that a page called logging.md does not shadow the logging module.)
    script = tmp_path / f"page_{page.stem}.py"
    script.write_text(code)
    result = run_python([str(script)])
    assert result.returncode == 0, (
        f"{_page_id(page)}: code failed (exit {result.returncode})\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    expected = "".join(body for info, body in blocks if info == "output")
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    if not checker.check_output(expected, result.stdout, flags):
        difference = checker.output_difference(
            doctest.Example("", expected), result.stdout, flags | doctest.REPORT_UDIFF
        )
        pytest.fail(f"{_page_id(page)}: output differs from the page's\n{difference}")


def _included_examples() -> list[str]:
    paths = set()
    for page in PAGES:
        for include in literal_includes(page.read_text()):
            path = (page.parent / include).resolve().relative_to(ROOT)
            if path.parts[0] == "examples":
                paths.add(str(path))
    return sorted(paths)


def test_every_included_example_is_run() -> None:
    missing = set(_included_examples()) - set(EXAMPLE_RUNS)
    assert not missing, f"add a command line for these to EXAMPLE_RUNS: {sorted(missing)}"


@pytest.mark.parametrize(
    "example", [e for e in _included_examples() if EXAMPLE_RUNS.get(e) is not None]
)
def test_included_example_runs(example: str) -> None:
    entry = EXAMPLE_RUNS[example]
    assert entry is not None
    args, phrase = entry
    port = str(free_port())
    result = run_python([example, *(a.replace("{port}", port) for a in args)])
    assert result.returncode == 0, f"{example} failed\n{result.stdout}\n{result.stderr}"
    assert phrase in result.stdout, result.stdout


# -- the plot script ----------------------------------------------------------------------


def _make_plots():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(DOCS))
    try:
        return importlib.import_module("make_plots")
    finally:
        sys.path.remove(str(DOCS))


def test_plot_pending_without_measurements(tmp_path: Path) -> None:
    make_plots = _make_plots()
    data = tmp_path / "rate.csv"
    data.write_text("implementation,packet_size,lossless_rate_gbps\n")
    output = tmp_path / "plot.svg"
    output.write_text("stale")
    assert make_plots.make_plot(data, output) is False
    assert not output.exists()  # a stale plot is not shown with no data behind it


def test_plot_from_measurements(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the docs extra is not installed")
    make_plots = _make_plots()
    data = tmp_path / "rate.csv"
    data.write_text(
        "implementation,packet_size,lossless_rate_gbps\n"
        "alpha impl,9000,2.0\nalpha impl,1472,0.5\nbeta impl,1472,3.0\n"
    )
    assert make_plots.read_measurements(data) == {
        "alpha impl": [(1472, 0.5), (9000, 2.0)],
        "beta impl": [(1472, 3.0)],
    }
    output = tmp_path / "out" / "plot.svg"
    assert make_plots.make_plot(data, output) is True
    svg = output.read_text()
    assert svg.startswith("<?xml") and "alpha impl" in svg and "beta impl" in svg
    first = output.read_bytes()
    make_plots.make_plot(data, output)
    assert output.read_bytes() == first  # reproducible: no dates, fixed ids


def test_plot_rejects_bad_data(tmp_path: Path) -> None:
    make_plots = _make_plots()
    data = tmp_path / "rate.csv"
    data.write_text("implementation,packet_size,lossless_rate_gbps\nx,1472,fast\n")
    with pytest.raises(ValueError, match=r"rate\.csv:2"):
        make_plots.read_measurements(data)
    data.write_text("implementation,rate\nx,1\n")
    with pytest.raises(ValueError, match="packet_size"):
        make_plots.read_measurements(data)


HEADLINE = (
    "workload,unit,ours,reference,higher_is_better\n"
    "decode,GB/s,3.0,19.6,yes\n"
    '"encode, small",heaps/s,166726,17879,yes\n'
    "memory,MiB,12.7,4.2,no\n"
)


def test_headline_table_and_chart(tmp_path: Path) -> None:
    make_plots = _make_plots()
    data = tmp_path / "headline.csv"
    data.write_text(HEADLINE)
    assert make_plots.headline_table(data).splitlines()[2:] == [
        "| decode | GB/s | 3 | 19.6 | 0.15 |",
        "| encode, small | heaps/s | 166,726 | 17,879 | 9.33 |",
        "| memory (lower is better) | MiB | 12.7 | 4.2 | 3.02 |",
    ]
    output = tmp_path / "headline.svg"
    assert make_plots.make_ratio_plot(data, output) is True
    svg = output.read_text()
    # One bar per higher-is-better workload, labelled with its ratio.
    assert "decode" in svg and "encode, small" in svg and "memory" not in svg
    assert "0.15" in svg and "9.33" in svg


def test_headline_rejects_bad_data(tmp_path: Path) -> None:
    make_plots = _make_plots()
    data = tmp_path / "headline.csv"
    data.write_text("workload,unit,ours,reference,higher_is_better\nx,GB/s,1,0,yes\n")
    with pytest.raises(ValueError, match=r"headline\.csv:2"):
        make_plots.read_headline(data)
    data.write_text("workload,ours\nx,1\n")
    with pytest.raises(ValueError, match="reference"):
        make_plots.read_headline(data)
    assert make_plots.make_ratio_plot(tmp_path / "missing.csv", tmp_path / "x.svg") is False


# -- the site ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("sphinx", reason="the docs extra is not installed")
    pytest.importorskip("furo", reason="the docs extra is not installed")
    pytest.importorskip("myst_parser", reason="the docs extra is not installed")
    out = tmp_path_factory.mktemp("site")
    result = run_python(
        ["-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
        timeout=300,
    )
    assert result.returncode == 0, f"sphinx -W failed:\n{result.stdout}\n{result.stderr}"
    return out / "html"


def test_site_builds(site: Path) -> None:
    for page in PAGES:
        name = page.relative_to(DOCS).with_suffix(".html")
        if page.name != "performance.md":  # included into performance_page
            assert (site / name).exists(), name
    front = (site / "index.html").read_text()
    assert "tutorials/asyncio_receiver.html" in front


def test_api_reference_covers_every_public_name(site: Path) -> None:
    html = "".join(p.read_text() for p in (site / "api").glob("*.html"))
    missing = []
    for module_name in ("spead2", "spead2.recv", "spead2.recv.asyncio", "spead2.send",
                        "spead2.send.asyncio"):
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None) or [
            n for n, obj in vars(module).items()
            if getattr(obj, "__module__", None) == module_name
        ]
        for name in names:
            obj = getattr(module, name)
            if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if f'id="{module_name}.{name}"' not in html:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"not in the API reference: {missing}"


def public_members(cls: type) -> dict[str, type]:
    """The public methods, properties and attributes of ``cls``, inherited ones included
    (from this package's classes, not ``object`` or other libraries), each with the
    class that defines it."""
    members: dict[str, type] = {}
    for base in reversed(cls.__mro__):
        if not base.__module__.startswith("spead2"):
            continue
        members.update(
            (name, base) for name, value in vars(base).items()
            if not name.startswith("_") and not isinstance(value, type)
        )
    return members


def test_api_reference_covers_every_public_member(site: Path) -> None:
    """Methods, properties and constants too: each on the class's own entry, or on the entry
    of the public class it inherits it from (where the reference documents it)."""
    html = "".join(p.read_text() for p in (site / "api").glob("*.html"))
    ids = set(re.findall(r'id="(spead2[\w.]*)"', html))
    by_owner = {tuple(i.rsplit(".", 2)[-2:]) for i in ids}
    missing = []
    for module_name in ("spead2", "spead2.recv", "spead2.recv.asyncio", "spead2.send",
                        "spead2.send.asyncio"):
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if name.startswith("_") or not inspect.isclass(obj) or issubclass(obj, BaseException):
                continue
            for member, owner in public_members(obj).items():
                if f"{module_name}.{name}.{member}" in ids:
                    continue
                if not owner.__name__.startswith("_") and (owner.__name__, member) in by_owner:
                    continue
                missing.append(f"{module_name}.{name}.{member}")
    assert not missing, f"not in the API reference: {missing}"
    # Inherited from Descriptor, and listed on Item's own entry as users look for them there.
    for member in ("from_raw", "to_raw", "dynamic_shape", "compatible_shape"):
        assert f"spead2.Item.{member}" in ids, member


def test_diagrams_are_shown(site: Path) -> None:
    packets = (site / "concepts" / "packets.html").read_text()
    architecture = (site / "concepts" / "architecture.html").read_text()
    assert "heap_packets.svg" in packets
    assert "receive_path.svg" in architecture
    assert (site / "_images" / "heap_packets.svg").exists()
    assert (site / "_images" / "receive_path.svg").exists()


def test_performance_page(site: Path) -> None:
    html = (site / "performance_page.html").read_text()
    make_plots = _make_plots()
    # It opens with the headline chart and table; the method and history come after.
    chart = html.index("headline.svg")
    assert chart < html.index("<table") < html.index("Benchmarks against the reference")
    assert html.index("Benchmarks against the reference") < html.index("What was optimised")
    assert html.index("lossless-rate-against-packet-size") > chart
    for row in make_plots.read_headline():
        assert row.workload in html
    data = DOCS / "_data" / "lossless_rate.csv"
    if make_plots.read_measurements(data):
        assert "lossless_rate.svg" in html
    else:
        assert "Figures are pending" in html and "<img" not in html
    if (DOCS / "performance.md").exists():
        assert "benchmark report" not in html  # the report itself, not the pending note
    else:
        assert "is pending" in html


def test_capture_tool_help_is_on_its_page(site: Path) -> None:
    html = (site / "tutorials" / "pcap.html").read_text()
    assert "--max-backlog" in html and "ENDPOINT" in html


# -- user-facing text stands alone -------------------------------------------------------

#: What user-facing text must not cite: files users do not have (the
#: developers' notes beside the repository, internal design documents, their
#: section numbers) and issue numbers.
INTERNAL_CITATION = re.compile(
    r"\.\./shared|\bshared/(?:reference|spec|seeds)|\b(?:API|PROTOCOL|DESIGN|TOOLS)\.md\b"
    r"|§\s*\d|\b[Ii]ssues?\s+#?\d+|\(#\d+\)"
)


def internal_citations(text: str) -> list[str]:
    """Each line of ``text`` that cites an internal document or an issue."""
    return [line.strip() for line in text.splitlines() if INTERNAL_CITATION.search(line)]


def test_internal_citation_pattern() -> None:
    for cited in ("see ../shared/DESIGN.md", "(API.md §8.1)", "PROTOCOL.md §9.1", "Issue #6",
                  "issue 6 asks", "as in DESIGN.md", "fixed (#12)"):
        assert internal_citations(cited), cited
    for fine in ("the differences page", "a TCP receiver", "Python 3.13", "#12345 colour"):
        assert not internal_citations(fine), fine


def test_readme_stands_alone() -> None:
    assert not internal_citations((ROOT / "README.md").read_text())


def test_site_stands_alone(site: Path) -> None:
    """No page of the site (its text, the API reference's docstrings, the tools' --help) cites
    internal documents or issues."""
    found = []
    for page in sorted(site.rglob("*.html")):
        text = re.sub(r"<[^>]+>", " ", page.read_text())
        for line in internal_citations(text):
            found.append(f"{page.relative_to(site)}: {line[:120]}")
    assert not found, "\n".join(found)


# -- the module map ---------------------------------------------------------------------


def test_architecture_names_every_module() -> None:
    """docs/architecture.md names every module of the package by its path under ``spead2/``,
    and every module path it names exists (so the map stays complete and true)."""
    text = (DOCS / "architecture.md").read_text()
    package = ROOT / "spead2"
    modules = {path.relative_to(package).as_posix() for path in package.rglob("*.py")}
    missing = sorted(module for module in modules if f"`{module}`" not in text)
    assert not missing, f"docs/architecture.md does not name these modules: {missing}"
    named = set(re.findall(r"`(?:spead2/)?([\w/]+\.py)`", text))
    elsewhere = ("tests/", "bench/", "examples/", "docs/", "scripts/")
    stale = sorted(n for n in named if n not in modules and not n.startswith(elsewhere))
    assert not stale, f"docs/architecture.md names modules that do not exist: {stale}"

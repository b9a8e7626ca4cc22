"""The documentation stays true as the code moves.

* docs/architecture.md's module table lists every module under sidecar/, names none that is gone,
  marks each one sans-IO or adapter, and no module marked sans-IO imports asyncio, sockets or
  processes.
* The README stays short enough to read in five minutes.
* The repository stands alone: nothing cites notes that live outside it.
* Relative links in README.md and docs/ lead to files (and headings) that exist, and so do the
  citations in code and tests (``docs/protocol.md §HDS frames``, ``docs/field-lessons.md #9``).
* The configuration reference's YAML example is a valid configuration.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from sidecar.config import Config

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
KINDS = {"sans-IO", "adapter"}
# What a sans-IO core never imports: the event loop, sockets, processes, network clients.
NOT_IN_SANS_IO = {"asyncio", "socket", "selectors", "subprocess", "aiohttp", "aiomqtt", "zeroconf"}
SKIPPED_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
                ".hypothesis", "build", "dist"}
# Citations of notes that are not in the repository (spelled in pieces so this file does not match).
OUTSIDE_CITATIONS = re.compile(
    "|".join([
        re.escape("../" + "shared"),
        re.escape("/work/" + "shared"),
        re.escape("hksv-" + "protocol.md"),
        re.escape("hksv-" + "field"),
        re.escape("hksv3-" + "notes"),
        re.escape("hap-" + "conformance"),
        re.escape("ecosystem" + ".md"),
        "field" + " notes",
        r"\btrap" + r" [0-9]",
    ]).encode()
)


def _module_table() -> dict[str, str]:
    """``{path: kind}`` from the architecture page's table rows that name a sidecar/ module."""
    rows: dict[str, str] = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*`(sidecar/[^`]+\.py)`\s*\|\s*([^|]+?)\s*\|", line)
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} is listed twice"
            rows[match.group(1)] = match.group(2)
    return rows


def _modules() -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "sidecar").rglob("*.py")
            if "__pycache__" not in p.parts}


def test_every_module_is_in_the_architecture_table_and_no_other() -> None:
    table = set(_module_table())
    modules = _modules()
    assert not modules - table, f"add these to docs/architecture.md's module table: {sorted(modules - table)}"
    assert not table - modules, f"docs/architecture.md lists modules that do not exist: {sorted(table - modules)}"


def test_each_module_is_marked_sans_io_or_adapter() -> None:
    wrong = {path: kind for path, kind in _module_table().items() if kind not in KINDS}
    assert not wrong, f"the Kind column takes {sorted(KINDS)}: {wrong}"


def _imported_top_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_modules_marked_sans_io_import_no_io() -> None:
    offenders = {}
    for path, kind in _module_table().items():
        if kind == "sans-IO" and (ROOT / path).exists():
            found = _imported_top_names(ROOT / path) & NOT_IN_SANS_IO
            if found:
                offenders[path] = sorted(found)
    assert not offenders, f"marked sans-IO in docs/architecture.md but imports I/O: {offenders}"


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < 150, f"README.md has {len(lines)} lines; move detail to docs/"


def _repository_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1]):
            continue
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 5_000_000:
            files.append(path)
    return files


def test_nothing_cites_notes_outside_the_repository() -> None:
    hits = []
    for path in _repository_files():
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            if OUTSIDE_CITATIONS.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.decode(errors='replace').strip()[:100]}")
    assert not hits, "cite docs/ instead:\n" + "\n".join(hits)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _markdown_pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", _markdown_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part) if file_part else page
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md":
            headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.M)}
            if anchor not in headings:
                broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def _headings(page: Path) -> list[str]:
    return [h.strip() for h in re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M)]


def _citation_problems(text: str) -> list[str]:
    """Each ``docs/<page>.md`` followed by ``§<heading>`` (one or more) or ``#<lesson>``, checked."""
    problems = []
    for match in re.finditer(r"(?<![\w/.-])docs/([a-z0-9-]+\.md)", text):
        page = ROOT / "docs" / match.group(1)
        if not page.exists() and text[max(0, match.start() - 2):match.start()] == "``":
            continue  # a literal path in another project's repository, e.g. ``docs/blueiris-server.md``
        if not page.exists():
            problems.append(f"docs/{match.group(1)} does not exist")
            continue
        rest = text[match.end():match.end() + 300]
        lesson = re.match(r",? ?#(\d+)", rest)
        if lesson:
            if not re.search(rf"^\*\*{lesson.group(1)}\. ", page.read_text(encoding="utf-8"), re.M):
                problems.append(f"docs/{match.group(1)} has no lesson #{lesson.group(1)}")
            continue
        headings = sorted(_headings(page), key=len, reverse=True)
        while True:
            section = re.match(r"(?:\s|,|and\b)*§", rest)
            if not section:
                break
            rest = rest[section.end():]
            heading = next((h for h in headings if rest.startswith(h)), None)
            if heading is None:
                problems.append(f"docs/{match.group(1)} has no section {rest.splitlines()[0][:40]!r}")
                break
            rest = rest[len(heading):]
    return problems


def test_citations_in_code_point_at_existing_pages_and_sections() -> None:
    problems = []
    for top in ("sidecar", "tests", "benchmarks", "docs"):
        for path in (ROOT / top).rglob("*"):
            if path.suffix in {".py", ".md"} and not SKIPPED_DIRS & set(path.relative_to(ROOT).parts):
                problems += [f"{path.relative_to(ROOT)}: {p}" for p in _citation_problems(path.read_text("utf-8"))]
    assert not problems, "\n".join(problems)


def test_the_configuration_reference_example_is_valid() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert example is not None
    config = Config.model_validate(yaml.safe_load(example.group(1)))
    assert config.cameras

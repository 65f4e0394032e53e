"""The repository carries its own API facts: code points at docs/api/, never outside the repo,
and every `docs/api/<page>.md#<section>` it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("deltek_procore", "deltek_procore_tests", "bench", "deploy")
OUTSIDE = re.compile(r"design\.md|shared/api|/work/shared|contracts\.md")
DOC_REF = re.compile(r"docs/api/([a-z]+\.md)(?:#([a-z0-9-]+))?")


def _files() -> list[Path]:
    here = Path(__file__).resolve()
    return [
        path
        for top in SCANNED
        for path in sorted((ROOT / top).rglob("*"))
        if path.suffix in (".py", ".md", ".yaml", ".yml", ".toml") and path.resolve() != here
    ]


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = page.read_text(encoding="utf-8")
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.MULTILINE)}


def test_slug_matches_github():
    assert slug("Subcontractor invoices (requisitions)") == "subcontractor-invoices-requisitions"
    assert slug("Headers, ids and value types") == "headers-ids-and-value-types"


def test_no_pointer_outside_the_repository():
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _files()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "pointers at files outside the repository:\n" + "\n".join(hits)


def test_every_docs_api_reference_resolves():
    known = {page.name: anchors(page) for page in (ROOT / "docs" / "api").glob("*.md")}
    assert {"procore.md", "deltek.md"} <= set(known)
    broken = []
    for path in _files() + [ROOT / "README.md"]:
        for match in DOC_REF.finditer(path.read_text(encoding="utf-8")):
            page, anchor = match.group(1), match.group(2)
            if page not in known or (anchor and anchor not in known[page]):
                broken.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    assert not broken, "references to missing pages or sections:\n" + "\n".join(broken)


def test_internal_links_of_the_api_pages_resolve():
    for page in (ROOT / "docs" / "api").glob("*.md"):
        links = set(re.findall(r"\]\(#([^)]+)\)", page.read_text(encoding="utf-8")))
        assert links <= anchors(page), f"{page.name}: {sorted(links - anchors(page))}"

"""The docs stay true: they point inside the repo, ship the spec they follow, and their
install steps are in a working order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
SPEC = ["CONTRACT.md", "QUALITY_RULES.md"]
# The shared spec beside the checkout (as in test_models' examples check), when it is there.
SHARED_SPEC = ROOT.parent / "shared" / "qode-api"
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("name", SPEC)
def test_the_spec_ships_under_docs_and_matches_the_shared_copy(name: str):
    ours = DOCS / "qode-api" / name
    assert ours.is_file()
    shared = SHARED_SPEC / name
    if not shared.is_file():
        pytest.skip("../shared is not beside this checkout")
    assert ours.read_bytes() == shared.read_bytes()


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_links_stay_inside_the_repo_and_resolve(page: Path):
    text = page.read_text(encoding="utf-8")
    assert "../shared" not in text
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), (page.name, target)
        assert path.exists(), (page.name, target)


def test_readme_points_at_the_shipped_spec():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in SPEC:
        assert f"docs/qode-api/{name}" in readme


@pytest.mark.parametrize("page", [ROOT / "README.md", DOCS / "index.md"], ids=["README", "index"])
def test_install_steps_work_in_the_order_given(page: Path):
    text = page.read_text(encoding="utf-8")
    # The wheel must land where the next line installs it from.
    wheels = re.findall(r"pip wheel[^\n]*", text)
    assert wheels and all("-w dist" in w for w in wheels)
    assert "pip install dist/" in text
    # Connections live in the metadata database: it must exist first.
    assert text.index("airflow db migrate") < text.index("airflow connections add")

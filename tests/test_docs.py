"""Code and documentation stay true to each other."""

from __future__ import annotations

import re
from pathlib import Path

from api.app import create_app
from api.settings import ApiSettings

ROOT = Path(__file__).resolve().parent.parent


def test_every_route_is_documented_in_api_md(sqlite_url: str) -> None:
    documented = set(
        re.findall(
            r"\|\s*(GET|POST|PUT|PATCH|DELETE)\s*\|\s*`([^`]+)`",
            (ROOT / "docs" / "api.md").read_text(),
        )
    )
    app = create_app(ApiSettings(database_url=sqlite_url))
    routes = {
        (method, path)
        for path, operations in app.openapi()["paths"].items()
        for method in (m.upper() for m in operations)
    }
    routes.add(("GET", "/metrics"))
    assert routes - documented == set(), "routes missing from docs/api.md"
    assert documented - routes == set(), "docs/api.md lists routes that do not exist"


def test_readme_names_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme
    assert "make test" in readme
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M)
    assert re.search(r"^test:", makefile, re.M)

"""The OpenAPI document agrees with ../shared/API.md: every method and path the
contract names is served and documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

API_MD = Path(__file__).resolve().parents[3] / "shared" / "API.md"
ROW = re.compile(r"`((?:(?:GET|POST|PATCH|PUT|DELETE) )?/api/v1/[^`?]*)")


def contract_operations() -> set[tuple[str, str]]:
    text = API_MD.read_text("utf-8")
    found = set()
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        for raw in ROW.findall(line):
            method, _, path = raw.partition(" ") if " " in raw else ("GET", "", raw)
            # "/reservations/{id}/check-in`, `/check-out" style shorthands
            found.add((method, re.sub(r"\{[^}]+\}", "{}", path.rstrip("/"))))
        for tail in re.findall(r", `(/[a-z-]+)`", line):
            head = ROW.findall(line)[-1]
            method, _, path = head.partition(" ")
            base = path.rsplit("/", 1)[0]
            found.add((method, re.sub(r"\{[^}]+\}", "{}", base + tail)))
    return found


def served_operations(client) -> set[tuple[str, str]]:
    spec = client.get("/api/v1/openapi.json").get_json()
    return {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "patch", "put", "delete")
    }


@pytest.mark.skipif(not API_MD.exists(), reason="../shared/API.md is not beside the project")
def test_every_operation_of_the_contract_is_in_the_openapi_document(client):
    missing = contract_operations() - served_operations(client)
    assert not missing, "API.md operations missing from openapi.json: " + ", ".join(
        f"{m} {p}" for m, p in sorted(missing, key=lambda x: x[1])
    )

"""docs/openapi.yaml documents every /api/v1 route and method, and nothing that does not exist."""
from __future__ import annotations

import re
from pathlib import Path

import yaml
from flask import Flask
from course_bots.schemas import REQUEST_BODIES, openapi_schema

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


def test_openapi_matches_the_routes(app: Flask) -> None:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    assert spec["openapi"].startswith("3.1")
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)[len("/api/v1"):]
            routes |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in spec["paths"].items() for method in item
                  if method in ("get", "post", "put", "patch", "delete")}
    assert routes - documented == set(), "routes missing from docs/openapi.yaml"
    assert documented - routes == set(), "docs/openapi.yaml describes routes that do not exist"
    error = spec["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["required"] == ["code", "message"]


def _resolve(spec: dict, node: dict) -> dict:
    ref = node.get("$ref", "")
    return _resolve(spec, spec["components"]["schemas"][ref.rsplit("/", 1)[1]]) if ref else node


def test_openapi_request_bodies_are_the_validated_schemas() -> None:
    """Every JSON request body the API validates is documented as exactly that schema, and no other is documented."""
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    documented = {(path, method): body["content"]["application/json"]["schema"]
                  for path, item in spec["paths"].items() for method, operation in item.items()
                  if isinstance(operation, dict) and "application/json" in (body := operation.get(
                      "requestBody", {})).get("content", {})}
    assert set(documented) == set(REQUEST_BODIES)
    for key, model in REQUEST_BODIES.items():
        in_docs = openapi_schema_of(_resolve(spec, documented[key]))
        assert in_docs == openapi_schema(model), f"docs/openapi.yaml's body of {key} differs from {model.__name__}"


def openapi_schema_of(schema: dict) -> dict:
    """The documented schema without prose (titles, descriptions, defaults), as the models are compared."""
    if isinstance(schema, dict):
        return {k: openapi_schema_of(v) for k, v in schema.items() if k not in ("title", "default", "description")}
    if isinstance(schema, list):
        return [openapi_schema_of(v) for v in schema]  # type: ignore[return-value]
    return schema

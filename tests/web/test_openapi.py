"""The OpenAPI document: valid 3.1, lists every API route, served with Swagger UI from a pip package."""
import re

import pytest

from tests.helpers.openapi import Checker, checker
from web.openapi import document


def test_the_document_is_valid_openapi_3_1():
    from openapi_spec_validator import validate

    validate(document())  # raises with the path of the first mistake


def test_every_api_route_is_documented_and_nothing_else(app):
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") or rule.rule in ("/healthz", "/readyz"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
            served |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in document()["paths"].items() for method in item
                  if method != "parameters"}
    assert served == documented


def test_served_as_json_and_shown_by_swagger_ui_from_the_pip_package(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.json == document() and response.json["openapi"] == "3.1.0"
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.data.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/") for a in assets), f"only our own files, no CDN: {assets}"
    bundle = client.get(next(a for a in assets if a.endswith("swagger-ui-bundle.js")))
    assert bundle.status_code == 200 and b"SwaggerUIBundle" in bundle.data


def test_the_checker_catches_a_response_the_document_does_not_allow():
    check = Checker(document())
    good = {"error": {"code": "job_not_found", "message": "No job."}}
    check.check("GET", "/api/v1/jobs/abc", 404, "application/json", good)
    with pytest.raises(AssertionError, match="does not list"):
        check.check("GET", "/api/v1/jobs/abc", 418, "application/json", good)
    with pytest.raises(AssertionError, match="does not match"):
        check.check("GET", "/api/v1/jobs/abc", 200, "application/json", {"id": "abc", "status": "lost"})
    with pytest.raises(AssertionError, match="'surprise' was unexpected"):  # a field the document does not name
        listed = {"jobs": [], "page": 1, "per_page": 20, "total": 0, "pages": 0, "next": None, "surprise": 1}
        check.check("GET", "/api/v1/jobs", 200, "application/json", listed)
    with pytest.raises(AssertionError, match="not in the OpenAPI document"):
        check.check("PUT", "/api/v1/jobs/abc", 200, "application/json", {})


def test_the_suite_checks_what_it_gets(client):
    before = checker().checked
    client.get("/api/v1/jobs")
    assert checker().checked == before + 1

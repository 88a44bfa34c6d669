"""The OpenAPI document: valid 3.1, lists every API route and every error code, served with Swagger UI."""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from werkzeug.exceptions import BadRequest, MethodNotAllowed, NotFound

from tests.helpers.openapi import Checker, checker
from web.errors import http_error_code
from web.openapi import ERRORS, document


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


# ---- error codes: what the code raises, the document lists and README's table explains ----------
ROOT = Path(__file__).resolve().parents[2]
RAISING_ROOMS = ("web", "shared")
KNOWN = {"not_an_image", "job_not_found", "batch_not_found", "bad_page", "queue_unavailable", "internal_error"}


@dataclass(frozen=True)
class Taker:
    """A callable that turns a `code` argument into an error: where its code and status go."""

    code_at: int
    status_at: int | None
    status: int | None  # when the call gives none


def _literal(node: ast.AST | None) -> Any:
    return node.value if isinstance(node, ast.Constant) else None


def _argument(call: ast.Call, name: str, at: int | None) -> ast.AST | None:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return call.args[at] if at is not None and at < len(call.args) else None


def _name(node: ast.AST) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _signature(fn: ast.FunctionDef, method: bool) -> tuple[list[str], dict[str, Any]]:
    params = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)][1 if method else 0:]
    defaults = dict(zip(params[len(params) - len(fn.args.defaults):], map(_literal, fn.args.defaults)))
    return params, defaults


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _name(n.func)]


def code_takers(trees: list[ast.Module]) -> dict[str, Taker]:
    """Error classes (DogbreedError's family, whose constructor takes a code), functions that answer
    `{"code": code}`, and functions that pass their `code` parameter on to either, to a fixpoint."""
    classes = {n.name: n for t in trees for n in ast.walk(t) if isinstance(n, ast.ClassDef)}
    functions = [n for t in trees for n in t.body if isinstance(n, ast.FunctionDef)]

    def is_error(name: str | None, seen: frozenset[str] = frozenset()) -> bool:
        return name == "DogbreedError" or (name in classes and name not in seen and any(
            is_error(_name(b), seen | {name}) for b in classes[name].bases))

    def constructor(name: str | None) -> ast.FunctionDef | None:
        if name not in classes:
            return None
        own = [n for n in classes[name].body if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
        return own[0] if own else next(filter(None, (constructor(_name(b)) for b in classes[name].bases)), None)

    def class_status(name: str | None) -> int | None:
        """`status = 400` in the class or the nearest base that says."""
        if name not in classes:
            return None
        own = [_literal(n.value) for n in classes[name].body if isinstance(n, (ast.Assign, ast.AnnAssign))
               and n.value is not None and "status" in map(_name, getattr(n, "targets", [getattr(n, "target", None)]))]
        return own[0] if own else next(filter(None, map(class_status, map(_name, classes[name].bases))), None)

    def taker(params: list[str], defaults: dict[str, Any], status: int | None = None) -> Taker | None:
        if "code" not in params:
            return None
        at = params.index("status") if "status" in params else None
        return Taker(params.index("code"), at, defaults.get("status") or status)

    takers: dict[str, Taker] = {}
    for name in classes:
        init = constructor(name) if is_error(name) else None
        if init is not None and (found := taker(*_signature(init, method=True), status=class_status(name))):
            takers[name] = found
    for fn in functions:
        answers = any(isinstance(d, ast.Dict) and any(_literal(k) == "code" and _name(v) == "code"
                                                      for k, v in zip(d.keys, d.values)) for d in ast.walk(fn))
        if answers and (found := taker(*_signature(fn, method=False))):
            takers[fn.name] = found
    while True:
        added = 0
        for fn in functions:
            if fn.name in takers:
                continue
            for call in _calls(fn):
                inner = takers.get(_name(call.func))
                if inner and _name(_argument(call, "code", inner.code_at)) == "code":
                    status = _literal(_argument(call, "status", inner.status_at)) or inner.status
                    if found := taker(*_signature(fn, method=False), status=status):
                        takers[fn.name], added = found, added + 1
                        break
        if not added:
            return takers


def raised_codes(trees: list[ast.Module]) -> dict[str, set[int | None]]:
    """Every literal code given to an error, with the statuses it is given with (None: not a literal)."""
    takers = code_takers(trees)
    found: dict[str, set[int | None]] = {}
    for tree in trees:
        for call in _calls(tree):
            taker = takers.get(_name(call.func))
            code = _literal(_argument(call, "code", taker.code_at)) if taker else None
            if isinstance(code, str):
                status = _literal(_argument(call, "status", taker.status_at)) or taker.status
                found.setdefault(code, set()).add(status)
    return found


def readme_error_table() -> dict[str, set[int]]:
    """README's "### Errors" table: each code in backticks in the second column, with its row's status."""
    section = (ROOT / "README.md").read_text().split("### Errors", 1)[1].split("\n#", 1)[0]
    table: dict[str, set[int]] = {}
    for status, codes in re.findall(r"^\| (\d{3}) \| ([^|]*) \|", section, flags=re.M):
        for code in re.findall(r"`([a-z0-9_]+)`", codes):
            table.setdefault(code, set()).add(int(status))
    return table


def our_trees() -> list[ast.Module]:
    return [ast.parse(p.read_text(), str(p)) for room in RAISING_ROOMS for p in sorted((ROOT / room).rglob("*.py"))]


def documented_codes() -> dict[str, set[int]]:
    listed: dict[str, set[int]] = {}
    for status, (_, codes) in ERRORS.items():
        for code in codes:
            listed.setdefault(code, set()).add(status)
    return listed


WERKZEUG_CODES = {http_error_code(e()) for e in (BadRequest, NotFound, MethodNotAllowed)}


def test_the_code_scan_finds_the_codes_we_raise():
    raised = raised_codes(our_trees())
    assert len(raised) >= 25 and KNOWN <= set(raised), sorted(raised)
    assert raised["job_not_found"] == {404}  # through web/access.py's helper, which passes its code on
    assert raised["not_an_image"] == {415} and raised["corrupt_image"] == {400}  # ImageError's default status
    assert raised["queue_unavailable"] == {503}  # an answer made without raising


def test_the_code_scan_follows_a_code_through_helpers():
    source = '''
class DogbreedError(Exception):
    status = 500
    def __init__(self, code, message, status=None): ...
class Refused(DogbreedError): ...
class Conflict(Refused):
    status: int = 409
class Quiet(DogbreedError):
    def __init__(self, message): ...
def refuse(thing, code): raise Refused(code, f"no {thing}", status=409)
def again(code): return refuse("x", code=code)
def answer(status, code, message): return {"code": code, "message": message}
refuse("a", "taken"); again("still_taken"); Quiet("not a code"); answer(503, "down", "m"); Refused("plain", "m")
Conflict("clash", "m"); Conflict(code="gone", message="m", status=410)
'''
    assert raised_codes([ast.parse(source)]) == {"taken": {409}, "still_taken": {409}, "down": {503},
                                                "plain": {500}, "clash": {409}, "gone": {410}}


def test_every_raised_code_is_in_the_document_and_in_readme_under_its_status():
    raised, listed, readme = raised_codes(our_trees()), documented_codes(), readme_error_table()
    for code, statuses in sorted(raised.items()):
        assert code in listed, f"{code!r} is raised but web/openapi.py's ERRORS does not list it"
        assert code in readme, f"{code!r} is raised but README's error table does not list it"
        known = statuses - {None}
        assert known <= listed[code], f"{code!r} is raised with {known}; the document lists it under {listed[code]}"
        assert known <= readme[code], f"{code!r} is raised with {known}; README lists it under {readme[code]}"
    assert set(document()["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]) \
        == set(listed)


def test_the_document_and_readme_list_no_code_that_nothing_answers():
    raised, listed, readme = raised_codes(our_trees()), documented_codes(), readme_error_table()
    assert set(listed) - set(raised) <= WERKZEUG_CODES, "listed, but nothing raises them"
    assert readme == listed, "README's error table and web/openapi.py's ERRORS differ"

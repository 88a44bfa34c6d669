"""Check API responses against web/openapi.py's document: status documented, body valid for its schema.

Installed for every Flask test client in the suite (tests/conftest.py) and as a requests hook for
tests that talk to a live server, so a change to the API that the document does not follow fails.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:dogbreed:openapi"
CHECKED_PREFIXES = ("/api/v1/", "/healthz", "/readyz")


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class Checker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.registry = Registry().with_resource(BASE, Resource(contents=document, specification=DRAFT202012))
        self.routes = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
                       for path in document["paths"]]
        self.checked = 0

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = self.registry.resolver(BASE).lookup(BASE + node["$ref"]).contents
        return node

    def check(self, method: str, path: str, status: int, content_type: str, body: Any) -> None:
        if not path.startswith(CHECKED_PREFIXES):
            return
        template = next((t for rx, t in self.routes if rx.match(path)), None)
        operation = self.document["paths"].get(template, {}).get(method.lower()) if template else None
        if operation is None:
            # Unknown routes and methods answer with the error shape, and nothing else.
            assert status in (404, 405), f"{method} {path} answered {status} but is not in the OpenAPI document"
            self._validate(body, "#/components/schemas/Error", f"{method} {path} {status}")
            self.checked += 1
            return
        responses = operation["responses"]
        answer = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        assert answer is not None, (f"{method} {path} answered {status}, which the OpenAPI document does not list "
                                    f"for {method} {template} (it lists {sorted(responses)})")
        answer = self._resolve(answer)
        schema_at = None
        for media in answer.get("content", {}):
            if content_type.split(";")[0].strip() == media:
                schema_at = _pointer("paths", template, method.lower(), "responses", str(status), "content", media,
                                     "schema") if "$ref" not in responses[str(status)] else \
                    responses[str(status)]["$ref"] + _pointer("content", media, "schema")[1:]
        assert schema_at is not None, (f"{method} {path} answered {status} as {content_type!r}; the document says "
                                       f"{sorted(answer.get('content', {})) or 'no body'}")
        if not content_type.startswith("text/event-stream"):  # a stream: the test reads its events itself
            self._validate(body, schema_at, f"{method} {path} {status}")
        self.checked += 1

    def _validate(self, body: Any, pointer: str, what: str) -> None:
        validator = Draft202012Validator({"$ref": BASE + pointer}, registry=self.registry)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, f"{what}: the body does not match the OpenAPI document: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors[:5])

    def requests_hook(self, response, *args: Any, **kwargs: Any):
        """For a requests.Session: session.hooks["response"].append(checker.requests_hook)."""
        from urllib.parse import urlsplit

        body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else None
        self.check(response.request.method, urlsplit(response.url).path, response.status_code,
                   response.headers.get("Content-Type", ""), body)
        return response


@lru_cache(maxsize=1)
def checker() -> Checker:
    from web.openapi import document

    return Checker(document())


class CheckedClient(FlaskClient):
    """Flask's test client, checking each API response against the document."""

    def open(self, *args: Any, **kwargs: Any):
        response = super().open(*args, **kwargs)
        request = response.request
        body = response.get_json(silent=True) if response.is_json else None
        checker().check(request.method, request.path, response.status_code, response.content_type or "", body)
        return response

"""The teller API's OpenAPI 3.1 document and its browsable ``/docs`` page.

The document is built from the sections the daemon mounts: their models and paths.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from pydantic.json_schema import models_json_schema

from gateway.runtime.http.kit import OpenApiKit
from gateway.runtime.problems import PROBLEMS

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pydantic import BaseModel

    from gateway.runtime.http.kit import ApiSection

__all__ = ["add_document_routes", "openapi_document"]


_DOCS_PAGE: Final = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>sscard-branchd API</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
code,pre{background:#f4f4f4;padding:.1rem .3rem}details{margin:.4rem 0}
.m{display:inline-block;width:3.5rem;font-weight:bold}</style></head>
<body><h1>sscard-branchd teller API</h1>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).
Errors: <code>application/problem+json</code> with a stable <code>code</code>.</p>
<div id="paths">Loading…</div>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  const root = document.getElementById('paths'); root.textContent = '';
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const d = document.createElement('details');
      const s = document.createElement('summary');
      s.innerHTML = '<span class="m"></span><code></code> ';
      s.querySelector('.m').textContent = method.toUpperCase();
      s.querySelector('code').textContent = path;
      s.append(op.summary || '');
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify(op, null, 2);
      d.append(s, pre); root.append(d);
    }
  }
});
</script></body></html>
"""


def _problem_schema() -> dict[str, Any]:
    item = {
        "type": "object",
        "required": ["code", "title_zh", "title_en"],
        "properties": {
            "code": {"type": "string"},
            "title_zh": {"type": "string"},
            "title_en": {"type": "string"},
        },
    }
    field_error = {
        "type": "object",
        "required": ["field", "code", "title_zh", "title_en"],
        "properties": {
            "field": {"type": "string", "description": "Dotted path of the field, or (body)"},
            "code": {"type": "string"},
            "title_zh": {"type": "string"},
            "title_en": {"type": "string"},
        },
    }
    return {
        "type": "object",
        "required": ["type", "code", "status", "title", "title_zh", "retryable"],
        "properties": {
            "type": {"type": "string"},
            "code": {"type": "string", "enum": sorted(PROBLEMS)},
            "status": {"type": "integer"},
            "title": {"type": "string"},
            "title_zh": {"type": "string"},
            "detail": {"type": "string"},
            "detail_zh": {"type": "string"},
            "instance": {"type": "string"},
            "request_id": {"type": "string"},
            "retryable": {
                "type": "boolean",
                "description": "The same request sent again later, unchanged, may succeed",
            },
            "retry_after": {"type": "number", "description": "Seconds to wait first"},
            "missing": {
                "type": "array",
                "items": item,
                "description": "incomplete-request: every missing or invalid material (一次性告知)",
            },
            "errors": {
                "type": "array",
                "items": field_error,
                "description": "invalid-request: every field that is not as documented",
            },
        },
        "additionalProperties": True,
    }


def openapi_document(sections: Iterable[ApiSection]) -> dict[str, Any]:
    """Build the OpenAPI 3.1 document from the sections' models and paths."""
    sections = tuple(sections)
    models: list[type[BaseModel]] = []
    for section in sections:
        models.extend(m for m in section.models if m not in models)
    _, top = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    schemas = dict(top.get("$defs", {}))
    schemas["Problem"] = _problem_schema()

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    problem = {
        "description": "Refused",
        "content": {"application/problem+json": {"schema": ref("Problem")}},
    }
    # Every status a registered problem has, 5xx included (no request should meet 500).
    statuses = sorted({p.status for p in PROBLEMS.values()} | {400, 401, 403, 404, 409, 413, 422})
    errors = {str(code): problem for code in statuses}
    errors["401"] = {
        **problem,
        "headers": {
            "WWW-Authenticate": {
                "description": 'RFC 6750 challenge: Bearer realm="sscard-branchd"',
                "required": True,
                "schema": {"type": "string", "pattern": "^Bearer "},
            }
        },
    }
    idempotency_header = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$"},
    }
    paths: dict[str, Any] = {}
    kit = OpenApiKit(ref=ref, errors=errors, idempotency_header=idempotency_header)
    for section in sections:
        paths.update(section.paths(kit))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sscard-branchd teller API",
            "version": "1",
            "description": json.dumps({"errors": "application/problem+json with a stable code"}),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "terminalCertificate": {"type": "mutualTLS"},
                "terminalToken": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"terminalCertificate": []}, {"terminalToken": []}],
    }


def add_document_routes(app: web.Application, sections: Iterable[ApiSection]) -> None:
    """Serve ``/openapi.json`` (built once) and ``/docs``."""
    document = openapi_document(sections)

    async def openapi(_request: web.Request) -> web.Response:
        """The OpenAPI 3.1 document."""
        return web.json_response(document)

    async def docs(_request: web.Request) -> web.Response:
        """A browsable page of the API, rendered from /openapi.json (no build step)."""
        return web.Response(text=_DOCS_PAGE, content_type="text/html")

    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/docs", docs)

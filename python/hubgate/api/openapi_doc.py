"""Write the API's OpenAPI documents into the package: `python -m hubgate.api.openapi_doc`.

The gateway serves these files at `/openapi.json` rather than building the document in its
own process (`hubgate.api.app.openapi_file`): each operation from its route (`ROUTERS`), its
parameters and JSON bodies from pydantic's schemas of the same types the gateway checks
requests and answers with. Run this after changing a route or an API model
(tests/api/test_openapi_file.py fails until then).
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from hubgate.api.app import READ_ERRORS, endpoints, openapi_file
from hubgate.api.deps import BEARER_DOC
from hubgate.api.routing import JSON, Endpoint

REF = "#/components/schemas/{model}"
INFO = {
    "title": "hubgate",
    "summary": "Operator API of a hubgate EV-charging gateway",
    "version": "1",
}
SECURITY: list[dict[str, list[str]]] = [{"HTTPBearer": []}]
INVALID = {
    "description": "Validation Error",
    "content": {JSON: {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
}
VALIDATION_SCHEMAS: dict[str, Any] = {
    "HTTPValidationError": {
        "properties": {
            "detail": {
                "items": {"$ref": "#/components/schemas/ValidationError"},
                "type": "array",
                "title": "Detail",
            }
        },
        "type": "object",
        "title": "HTTPValidationError",
    },
    "ValidationError": {
        "properties": {
            "loc": {
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "type": "array",
                "title": "Location",
            },
            "msg": {"type": "string", "title": "Message"},
            "type": {"type": "string", "title": "Error Type"},
            "input": {"title": "Input"},
            "ctx": {"type": "object", "title": "Context"},
        },
        "type": "object",
        "required": ["loc", "msg", "type"],
        "title": "ValidationError",
    },
}


def document(open_reads: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the app; reads need the token unless `open_reads`."""
    served = endpoints()
    inputs: list[Any] = []
    for k, endpoint in enumerate(served):
        for where, model in endpoint.models.items():
            inputs.append(((k, where), "validation", model.__pydantic_core_schema__))
        if endpoint.body is not None:
            inputs.append(((k, "body"), "validation", endpoint.body.core_schema))
        if endpoint.result is not None:
            inputs.append(((k, "result"), "serialization", endpoint.result.core_schema))
    generated, definitions = GenerateJsonSchema(ref_template=REF).generate_definitions(inputs)
    schemas = {key: value for (key, _mode), value in generated.items()}
    defined: dict[str, Any] = {str(name): value for name, value in definitions.items()}
    parameter_models = {model.__name__ for e in served for model in e.models.values()}
    paths: dict[str, dict[str, Any]] = {}
    for k, endpoint in enumerate(served):
        own = {key: value for (index, key), value in schemas.items() if index == k}
        operation = _operation(endpoint, open_reads, own, defined)
        paths.setdefault(endpoint.path, {})[endpoint.route.method.lower()] = operation
    components: dict[str, Any] = {
        name: schema for name, schema in defined.items() if name not in parameter_models
    }
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "paths": paths,
        "components": {
            "schemas": dict(sorted({**components, **VALIDATION_SCHEMAS}.items())),
            "securitySchemes": {
                "HTTPBearer": {"type": "http", "scheme": "bearer", "description": BEARER_DOC}
            },
        },
    }


def _operation(
    endpoint: Endpoint,
    open_reads: bool,
    schemas: Mapping[str, Any],
    definitions: Mapping[str, Any],
) -> dict[str, Any]:
    route = endpoint.route
    name = route.handler.__name__
    secured = route.token or not open_reads
    operation: dict[str, Any] = {
        "tags": list(route.tags),
        "summary": name.replace("_", " ").title(),
        "description": inspect.cleandoc(route.handler.__doc__ or ""),
        "operationId": re.sub(r"\W", "_", name + endpoint.path) + "_" + route.method.lower(),
    }
    if secured:
        operation["security"] = SECURITY
    parameters = []
    for where in endpoint.models:
        fields = definitions[schemas[where]["$ref"].rsplit("/", 1)[1]]
        required = set(fields.get("required", ()))
        for alias, field_schema in fields.get("properties", {}).items():
            parameter = {
                "name": alias,
                "in": where,
                "required": where == "path" or alias in required,
                "schema": field_schema,
            }
            if "description" in field_schema:
                parameter["description"] = field_schema["description"]
            parameters.append(parameter)
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body is not None:
        body = {"content": {JSON: {"schema": schemas["body"]}}}
        operation["requestBody"] = {**body, "required": True} if endpoint.body_required else body
    content: dict[str, Any] = (
        {JSON: {"schema": schemas["result"]}} if endpoint.result is not None else {}
    )
    content |= {media: {"schema": {"type": "string"}} for media in route.content or ()}
    responses: dict[int, Any] = {200: {"description": route.description_200, "content": content}}
    if secured and not route.token:
        responses |= {status: {"description": text} for status, text in READ_ERRORS.items()}
    responses |= route.responses
    if parameters or endpoint.body is not None:
        responses[422] = INVALID
    operation["responses"] = {str(status): responses[status] for status in sorted(responses)}
    return operation


def document_text(open_reads: bool) -> str:
    """`document(open_reads)` as the file holds it."""
    return json.dumps(document(open_reads), indent=1) + "\n"


def main() -> None:
    """Write both documents (reads with the token, and open reads)."""
    for open_reads in (False, True):
        path = openapi_file(open_reads)
        path.parent.mkdir(exist_ok=True)
        path.write_text(document_text(open_reads), encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

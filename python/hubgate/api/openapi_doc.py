"""Write the API's OpenAPI documents into the package: `python -m hubgate.api.openapi_doc`.

The gateway serves these files at `/openapi.json` instead of having FastAPI build the
document in its own process (`hubgate.api.app.openapi_file`); run this after changing a
route or an API model (tests/api/test_openapi_file.py fails until then).
"""

from __future__ import annotations

import json

from hubgate.api.app import openapi_file, routes_app


def document_text(open_reads: bool) -> str:
    """The document of `routes_app(open_reads)` as the file holds it."""
    return json.dumps(routes_app(open_reads).openapi(), indent=1) + "\n"


def main() -> None:
    """Write both documents (reads with the token, and open reads)."""
    for open_reads in (False, True):
        path = openapi_file(open_reads)
        path.parent.mkdir(exist_ok=True)
        path.write_text(document_text(open_reads), encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

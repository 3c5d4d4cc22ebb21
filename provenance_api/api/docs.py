"""GET /openapi.json (the document) and GET /docs (Swagger UI from the pinned package's files).

The Swagger UI files come from the flask-openapi3-swagger wheel (pinned in setup.cfg), served
by this app: the docs page loads nothing from a CDN.
"""

from __future__ import annotations

import json
from pathlib import Path

import flask_openapi3_swagger
from flask import Blueprint, current_app, jsonify, render_template_string
from flask.typing import ResponseReturnValue

SWAGGER_FILES = Path(flask_openapi3_swagger.__file__).parent / "templates" / "swagger"

bp = Blueprint("docs", __name__, static_folder=SWAGGER_FILES, static_url_path="/docs/static")

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Provenance API</title>
  <link rel="icon" href="{{ url_for('docs.static', filename='images/swagger.svg') }}">
  <link rel="stylesheet" href="{{ url_for('docs.static', filename='css/swagger-ui.css') }}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{{ url_for('docs.static', filename='js/swagger-ui-bundle.js') }}"></script>
<script src="{{ url_for('docs.static', filename='js/swagger-ui-standalone-preset.js') }}"></script>
<script>
  window.onload = function () {
    window.ui = SwaggerUIBundle({
      url: {{ url_for('docs.openapi') | tojson }},
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  };
</script>
</body>
</html>
"""


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 document of the JSON API."""
    return jsonify(current_app.api_doc)  # type: ignore[attr-defined]


@bp.get("/docs")
def ui() -> ResponseReturnValue:
    """Swagger UI over /openapi.json."""
    return render_template_string(_PAGE)


def render_document(document: dict) -> str:
    """The committed form of the OpenAPI document: indented JSON, one trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Write the OpenAPI document to docs/openapi.json (or the path given).

    Example: python -m provenance_api.api.docs docs/openapi.json
    """
    import sys
    import tempfile

    from provenance_api.app import create_app

    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0] if args else "docs/openapi.json")
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app({"TESTING": True, "DATA_DIR": data_dir})
        text = render_document(app.api_doc)  # type: ignore[attr-defined]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()

"""The API's own documentation: the text and form schema that ``/docs`` and ``/openapi.json``
show, and the example images the page offers. Built from ``StyleConfig`` like the form itself.
"""

from __future__ import annotations

from typing import Any

from impasto.web import options as form_options

EXAMPLES = [
    {
        "role": "content",
        "name": "astronaut.jpg",
        "url": "/static/example-astronaut.jpg",
        "title": "Astronaut Eileen Collins",
        "credit": "NASA, public domain",
    },
    {
        "role": "style",
        "name": "starry_night.jpg",
        "url": "/static/example-starry-night.jpg",
        "title": "The Starry Night",
        "credit": "Vincent van Gogh, 1889, public domain",
    },
]

DESCRIPTION = """\
Neural style transfer (Gatys et al.) over HTTP: upload a content photo and one or more style
images, follow the run as server-sent events, download the result.

Every `/api/` request needs the server's key: the one in the address `impasto serve` printed
(`?token=KEY`), sent as `Authorization: Bearer KEY` (or as `?token=KEY`). Requests from other
web pages are refused.

```sh
KEY=...   # what follows ?token= in the address impasto serve printed
curl -H "Authorization: Bearer $KEY" -F content=@photo.jpg -F style=@painting.jpg -F size=256 http://127.0.0.1:8000/api/jobs
curl -H "Authorization: Bearer $KEY" -N http://127.0.0.1:8000/api/jobs/ID/events
curl -H "Authorization: Bearer $KEY" -o result.png http://127.0.0.1:8000/api/jobs/ID/result
curl -H "Authorization: Bearer $KEY" -X POST http://127.0.0.1:8000/api/jobs/ID/stop   # keep the picture so far
curl -H "Authorization: Bearer $KEY" -X DELETE http://127.0.0.1:8000/api/jobs/ID      # remove it and its files
```

Options are the fields of `impasto.StyleConfig`, sent as form fields of the same name (lists as
comma-separated text). Each server caps what one job may cost (`GET /api/options` says how
much); errors answer with a JSON `detail` saying what was wrong and which limit it met.
"""


def job_form_schema(max_styles: int) -> dict[str, Any]:
    """The multipart body of POST /api/jobs for the OpenAPI document, built from StyleConfig."""
    types = {"int": "integer", "float": "number", "bool": "boolean"}
    properties: dict[str, Any] = {
        "content": {
            "type": "string",
            "format": "binary",
            "description": "the photo whose layout to keep",
        },
        "style": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "maxItems": max_styles,
            "description": "the painting(s) whose brushwork and palette to take (repeat the field for several)",
        },
    }
    for entry in form_options.describe():
        prop: dict[str, Any] = {
            "type": types.get(entry["kind"], "string"),
            "description": entry["help"],
        }
        if entry["default"] != "":
            prop["default"] = entry["default"]
        if entry["choices"]:
            prop["enum"] = entry["choices"]
        if entry["kind"] in ("text", "numbers"):
            prop["description"] += " (comma-separated)"
        properties[entry["name"]] = prop
    schema = {"type": "object", "required": ["content", "style"], "properties": properties}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }

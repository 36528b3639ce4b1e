"""Writes openai_responses_spec.json: the Responses API's part of OpenAI's OpenAPI spec.

Source: github.com/openai/openai-openapi, openapi.json (the commit is recorded in the
output). Kept: the schemas CreateResponse, Response and ResponseStreamEvent with every
schema they reference, and the spec's own examples of POST /responses (request and
response). Run: python tests/data/extract_responses_spec.py OPENAPI_JSON COMMIT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOTS = ("CreateResponse", "Response", "ResponseStreamEvent")


def referenced(schemas: dict[str, Any], roots: tuple[str, ...]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "$ref" and isinstance(item, str):
                    stack.append(item.rsplit("/", 1)[-1])
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            walk(schemas[name])
    return seen


def main(source: str, commit: str) -> None:
    spec = json.loads(Path(source).read_text())
    schemas = spec["components"]["schemas"]
    post = spec["paths"]["/responses"]["post"]
    examples = [
        {"title": e["title"], "curl": e["request"]["curl"], "response": e["response"]}
        for e in post["x-oaiMeta"]["examples"]
    ]
    subset = {
        "source": f"openai/openai-openapi@{commit} openapi.json (OpenAPI {spec['openapi']}, "
        f"API version {spec['info']['version']})",
        "components": {"schemas": {n: schemas[n] for n in sorted(referenced(schemas, ROOTS))}},
        "examples": examples,
    }
    out = Path(__file__).with_name("openai_responses_spec.json")
    out.write_text(json.dumps(subset, indent=0, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

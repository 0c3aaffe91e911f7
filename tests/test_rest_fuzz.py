"""A bounded schema-conformance fuzz of the REST API (schemathesis): whatever a client sends,
the answer is one the OpenAPI schema documents (status, content type, body shape), never a 5xx."""
from __future__ import annotations

from hypothesis import HealthCheck, settings

import schemathesis
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from pipelines.api import create_rest_app  # noqa: E402

schema = schemathesis.openapi.from_asgi("/openapi.json", create_rest_app())


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_every_answer_conforms_to_the_schema(case):
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])

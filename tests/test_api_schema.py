"""schemathesis over the OpenAPI schema, in-process against a populated read model: no 5xx, responses as documented.

The schema is loaded at import (not through ``schemathesis.pytest.from_fixture``, whose
lazy loader does not run under pytest 9); building the app touches no network.
"""

from __future__ import annotations

import time
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from api.main import build_context, create_app
from api.universe import Universe
from tests.test_api_support import in_process_model, scenario_settings


def _app() -> object:
    # The model is built at import: keep its one-off venue reports "fresh" for the whole run, or
    # /health would rightly answer 503 "down", which schemathesis counts as a server error.
    config = scenario_settings(health_report_max_age_s=1e9, health_max_data_age_s=1e9)
    ctx = build_context(config, None, model=in_process_model(time.time_ns(), config), universe=Universe())
    return create_app(ctx)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_schema(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()

"""Fuzzing the API from its own OpenAPI document (schemathesis).

Every operation of ``/api/v1/openapi.json`` is called with inputs generated
from its schema, signed in as a platform admin and as a customer, in the
access matrix's world of two regions (so ids hit real objects). Whatever the
input, the API must not answer 500, and every answer must match what the
document says of it: the status is one it lists, the body matches its
schema. The number of examples per operation is bounded (``FUZZ_EXAMPLES``,
default 3) so the test runs in CI; raise it locally to search harder.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from booking.services import accounts

schemathesis = pytest.importorskip("schemathesis")

from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    response_schema_conformance,
    status_code_conformance,
)

from tests.web.test_access_matrix import _march, build_world  # noqa: E402, F401

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))

# Operations that act on the caller's own credential: fuzzing them would
# revoke the token the rest of the run signs in with.
SKIP = {("DELETE", "/api/v1/auth/tokens/current")}

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def fuzz(operation, auth):
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def call(case):
        case.call_and_validate(headers=auth, checks=CHECKS)

    return call


def test_the_api_answers_every_generated_input_without_500_and_as_documented(app, session):
    world = build_world(session)
    headers = {}
    for who, user in (("admin", world.admin), ("customer", world.a.customer)):
        secret, _ = accounts.issue_token(session, user, days=1)
        headers[who] = {"Authorization": f"Bearer {secret}"}
    session.commit()

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP or (
            operation.method.upper(),
            operation.full_path,
        ) in SKIP:
            continue
        for who, auth in headers.items():
            try:
                fuzz(operation, auth)()
            except Exception as error:  # every failure is reported together
                method = operation.method.upper()
                failures.append(f"{method} {operation.full_path} as {who}: {error}")
    assert not failures, "\n\n".join(failures)


# --- what the fuzzing found, kept as plain regression tests ------------------------------


def test_an_empty_password_is_refused_as_too_short_not_a_crash(client, platform_admin, session):
    # zxcvbn raised IndexError on an empty password: a 500 on POST /users.
    secret, _ = accounts.issue_token(session, platform_admin, days=1)
    session.commit()
    answer = client.post(
        "/api/v1/users",
        json={"email": "new@example.cn", "name": "新用户", "password": ""},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 422
    assert "password" in answer.get_json()["error"]["details"]["fields"]


@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_an_id_longer_than_any_bigint_is_not_found_not_a_crash(
    client, method, platform_admin, session
):
    # SQLite raised OverflowError comparing such a number: a 500.
    secret, _ = accounts.issue_token(session, platform_admin, days=1)
    session.commit()
    answer = client.open(
        "/api/v1/resources/1398704814078675212304384000",
        method=method,
        json={},
        headers={"Authorization": f"Bearer {secret}"},
    )
    # Werkzeug's router answers PATCH with 405 (the path matches no rule that
    # allows it); what matters is that the number never reaches the database.
    assert answer.status_code in (404, 405)
    assert answer.get_json()["error"]["code"] in ("not_found", "method_not_allowed")


@pytest.mark.parametrize("org_id", [-4430398564220060, 2**70])
def test_an_id_in_a_body_beyond_the_databases_range_is_422_not_a_crash(
    client, platform_admin, session, org_id
):
    # PostgreSQL refused -4430398564220060 for an INTEGER column
    # (NumericValueOutOfRange) and SQLite cannot bind 2**70 (OverflowError):
    # both were 500s on POST /users.
    secret, _ = accounts.issue_token(session, platform_admin, days=1)
    session.commit()
    answer = client.post(
        "/api/v1/users",
        json={
            "email": "new@example.cn",
            "name": "新用户",
            "password": "a long enough pass phrase 8431",
            "memberships": [{"organization_id": org_id, "role": "member"}],
        },
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["error"]["code"] == "validation_failed"


def test_a_ratio_or_amount_too_large_to_quantize_is_422_not_a_crash(client, session):
    # "1e100" as a ratio and "1e30" as money raised decimal.InvalidOperation
    # when quantized: 500s on PATCH /voucher-policies/{id} and wherever money is read.
    world = build_world(session)
    secret, _ = accounts.issue_token(session, world.a.officer, days=1)
    session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    policy = f"/api/v1/voucher-policies/{world.a.policy.id}"
    ratio = client.patch(policy, json={"tier1_rate": "1e100"}, headers=headers)
    assert ratio.status_code == 422, ratio.get_json()
    assert "tier1_rate" in ratio.get_json()["error"]["details"]["fields"]
    money = client.patch(policy, json={"order_cap": "1e30"}, headers=headers)
    assert money.status_code == 422, money.get_json()
    assert money.get_json()["error"]["details"]["fields"]["order_cap"] == ["金额过大。"]


def test_the_nrii_layout_of_the_open_sharing_report_matches_the_document(app, session):
    # layout=nrii answers another JSON shape than the report; the document
    # listed only the report's, so every such answer violated it.
    world = build_world(session)
    secret, _ = accounts.issue_token(session, world.admin, days=1)
    session.commit()
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = schema["/api/v1/reports/open-sharing"]["GET"]
    case = operation.Case(query={"layout": "nrii", "year": 2026})
    answer = case.call_and_validate(
        headers={"Authorization": f"Bearer {secret}"}, checks=[response_schema_conformance]
    )
    assert answer.status_code == 200
    assert answer.json()["programme"] == "national"


STATEFUL_EXAMPLES = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "15"))


def test_linked_sequences_of_calls_never_fail_the_checks(app, session):
    """Stateful: schemathesis chains operations by the links it infers from
    the document (an id a POST answers feeds the GET, PATCH, approve, cancel …
    of that object), signed in as the platform admin, so sequences reach
    objects that single calls only guess at."""
    world = build_world(session)
    secret, _ = accounts.issue_token(session, world.admin, days=1)
    session.commit()
    auth = {"Authorization": f"Bearer {secret}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    machine = schema.as_state_machine()

    class Workflow(machine):
        def get_call_kwargs(self, case):
            return {"headers": auth}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            # The same checks as the single calls: no 500, documented status
            # and body.
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )

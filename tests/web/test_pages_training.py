"""The training register page: grant form (errors beside the fields, input
kept, CSRF), the list with revoke buttons, only for the lab's admins."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.models.catalog import TrainingRecord
from booking.services import training
from tests.factories.accounts import create_user
from tests.web.test_pages_accounts import csrf_token
from tests.web.test_pages_approvals import assert_nothing_inline, sign_in

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(booking_world, session):
    w = booking_world(requires_training=True)
    session.commit()
    return w


def records(session) -> list[TrainingRecord]:
    session.expire_all()
    return session.query(TrainingRecord).order_by(TrainingRecord.id).all()


def test_the_register_page_grants_and_revokes(client, world, session):
    sign_in(client, world.lab_admin)
    page = client.get("/training")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'href="/training"' in text  # in the navigation
    assert_nothing_inline(text)

    answer = client.post(
        "/training",
        data={
            "csrf_token": csrf_token(page.data),
            "email": world.customer_user.email,
            "resource_id": str(world.resource.id),
            "category_id": "",
            "valid_until": "2027-06-30",
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    [record] = records(session)
    assert record.valid_until == datetime(2027, 6, 30, 23, 59, 59, tzinfo=SH)
    assert record.granted_by_id == world.lab_admin.id

    listed = client.get("/training").get_data(as_text=True)
    assert world.customer_user.email in listed
    assert f'action="/training/{record.id}/revoke' in listed

    revoked = client.post(
        f"/training/{record.id}/revoke", data={"csrf_token": csrf_token(listed.encode())}
    )
    assert revoked.status_code == 302
    assert records(session)[0].revoked_at is not None
    assert world.customer_user.email not in client.get("/training").get_data(as_text=True)
    assert world.customer_user.email in client.get("/training?state=revoked").get_data(as_text=True)


def test_a_refused_grant_keeps_the_input_and_says_why_beside_the_field(client, world, session):
    sign_in(client, world.lab_admin)
    token = csrf_token(client.get("/training").data)
    unknown = client.post(
        "/training",
        data={
            "csrf_token": token,
            "email": "nobody@example.cn",
            "resource_id": str(world.resource.id),
            "valid_until": "2027-06-30",
        },
    )
    text = unknown.get_data(as_text=True)
    assert unknown.status_code == 422
    assert 'value="nobody@example.cn"' in text
    assert 'id="email-error" role="alert"' in text
    assert 'value="2027-06-30"' in text
    assert f'selected value="{world.resource.id}"' in text

    both = client.post(
        "/training",
        data={
            "csrf_token": token,
            "email": world.customer_user.email,
            "resource_id": str(world.resource.id),
            "category_id": str(world.resource.category_id),
        },
    )
    assert both.status_code == 422
    assert 'id="category_id-error" role="alert"' in both.get_data(as_text=True)

    past = client.post(
        "/training",
        data={
            "csrf_token": token,
            "email": world.customer_user.email,
            "resource_id": str(world.resource.id),
            "valid_until": "2026-11-01",
        },
    )
    assert past.status_code == 422
    assert 'id="valid_until-error" role="alert"' in past.get_data(as_text=True)
    assert records(session) == []


def test_granting_needs_the_csrf_token(client, world, session):
    sign_in(client, world.lab_admin)
    answer = client.post(
        "/training",
        data={"email": world.customer_user.email, "resource_id": str(world.resource.id)},
    )
    assert answer.status_code == 400
    assert records(session) == []


def test_another_labs_resource_cannot_be_slipped_into_the_form(
    client, world, booking_world, session
):
    theirs = booking_world()
    session.commit()
    sign_in(client, world.lab_admin)
    answer = client.post(
        "/training",
        data={
            "csrf_token": csrf_token(client.get("/training").data),
            "email": world.customer_user.email,
            "resource_id": str(theirs.resource.id),
        },
    )
    assert answer.status_code == 422
    assert 'id="resource_id-error" role="alert"' in answer.get_data(as_text=True)
    assert records(session) == []


def test_only_lab_admins_see_the_register(client, world, session):
    member = create_user(session, world.provider, "member")
    session.commit()
    sign_in(client, world.customer_user)
    assert 'href="/training"' not in client.get("/").get_data(as_text=True)
    assert client.get("/training").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/").data)})
    sign_in(client, member)
    assert client.get("/training").status_code == 403


def test_another_labs_record_cannot_be_revoked_from_the_page(client, world, booking_world, session):
    theirs = booking_world()
    record = training.grant_training(
        session,
        theirs.lab_actor,
        {"user_id": theirs.customer_user.id, "resource_id": theirs.resource.id},
    )
    session.commit()
    sign_in(client, world.lab_admin)
    token = csrf_token(client.get("/training").data)
    answer = client.post(f"/training/{record.id}/revoke", data={"csrf_token": token})
    assert answer.status_code == 404
    assert records(session)[0].revoked_at is None

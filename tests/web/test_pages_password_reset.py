"""A forgotten password: the same answer whether or not the address has an
account; a one-time link by mail (through the outbox), stored hashed, good
for one hour and one use; a new password that passes the usual checks; every
session signed in before ends."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine

from booking.domain import clock
from booking.models.audit import AuditEvent
from booking.models.notifications import OutboxMail
from booking.models.password_reset import PasswordResetToken
from booking.services import accounts
from tests.factories.accounts import PASSWORD
from tests.web.test_pages_accounts import csrf_token
from tests.web.test_pages_approvals import assert_nothing_inline, sign_in

NEW_PASSWORD = "Fenjiu-Pingyao-2026-lamp"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(clock.now(), tick=False) as traveller:
        yield traveller


@pytest.fixture
def user(make_user, session):
    found = make_user(email="zhang.wei@example.cn", name="张伟", locale="en")
    session.commit()
    return found


def ask(client, email: str):
    token = csrf_token(client.get("/password/forgot").data)
    return client.post("/password/forgot", data={"csrf_token": token, "email": email})


def mails(session) -> list[OutboxMail]:
    session.expire_all()
    return session.query(OutboxMail).order_by(OutboxMail.id).all()


def link_in(mail: OutboxMail) -> str:
    match = re.search(r"http://testserver(/password/reset/[A-Za-z0-9_-]+)", mail.text_body)
    assert match, mail.text_body
    return match.group(1)


def test_the_answer_is_the_same_whether_or_not_the_account_exists(client, user, session):
    known = ask(client, "Zhang.Wei@example.cn")
    unknown = ask(client, "nobody@example.cn")
    assert known.status_code == unknown.status_code == 200
    strip = lambda page: page.replace("Zhang.Wei@example.cn", "X").replace(  # noqa: E731
        "nobody@example.cn", "X"
    )
    assert strip(known.get_data(as_text=True)) == strip(unknown.get_data(as_text=True))
    [mail] = mails(session)
    assert mail.recipient == "zhang.wei@example.cn"
    assert mail.kind == "password_reset"
    assert mail.locale == "en" and "Reset your password" in mail.subject
    path = link_in(mail)
    token = path.rsplit("/", 1)[1]
    stored = session.query(PasswordResetToken).one()
    assert stored.token_hash == accounts.hash_token(token)
    assert token not in stored.token_hash
    assert stored.expires_at - stored.created_at == timedelta(hours=1)
    assert_nothing_inline(known.get_data(as_text=True))


def test_the_link_sets_a_new_password_once_and_ends_every_session(client, app, user, session):
    other_device = app.test_client()
    sign_in(other_device, user)
    assert other_device.get("/account").status_code == 200
    ask(client, user.email)
    path = link_in(mails(session)[0])
    page = client.get(path)
    assert page.status_code == 200
    answer = client.post(
        path,
        data={
            "csrf_token": csrf_token(page.data),
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login")
    session.expire_all()
    assert accounts.verify_password(session.get(type(user), user.id).password_hash, NEW_PASSWORD)
    assert other_device.get("/account").status_code == 302  # signed out
    assert client.get(path).status_code == 410  # used
    actions = {e.action for e in session.query(AuditEvent)}
    assert {"user.password_reset_request", "user.password_reset"} <= actions


def test_a_weak_password_is_refused_beside_the_field_and_the_link_still_works(
    client, user, session
):
    ask(client, user.email)
    path = link_in(mails(session)[0])
    token = csrf_token(client.get(path).data)
    weak = client.post(path, data={"csrf_token": token, "password": "12345", "confirm": "12345"})
    assert weak.status_code == 422
    assert re.search(r'id="password-error" role="alert">[^<]+', weak.get_data(as_text=True))
    differ = client.post(
        path, data={"csrf_token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"}
    )
    assert differ.status_code == 422
    assert 'id="confirm-error"' in differ.get_data(as_text=True)
    assert client.get(path).status_code == 200
    session.expire_all()
    assert accounts.verify_password(session.get(type(user), user.id).password_hash, PASSWORD)


def test_a_link_expires_after_an_hour(client, user, session, frozen):
    ask(client, user.email)
    path = link_in(mails(session)[0])
    frozen.shift(timedelta(minutes=59))
    assert client.get(path).status_code == 200
    frozen.shift(timedelta(minutes=2))
    assert client.get(path).status_code == 410


def test_a_new_link_voids_the_older_ones_and_requests_are_capped(client, user, session):
    for _ in range(5):
        ask(client, user.email)
    sent = mails(session)
    assert len(sent) == 3  # at most three an hour; the answer stays the same
    first, last = link_in(sent[0]), link_in(sent[-1])
    assert client.get(first).status_code == 410
    assert client.get(last).status_code == 200


def test_the_forms_need_the_csrf_token(client, user, session):
    assert client.post("/password/forgot", data={"email": user.email}).status_code == 400
    assert mails(session) == []
    ask(client, user.email)
    path = link_in(mails(session)[0])
    answer = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert answer.status_code == 400


def test_the_sign_in_page_links_to_the_reset(client):
    assert 'href="/password/forgot"' in client.get("/login").get_data(as_text=True)

"""The accounts API: tokens, sign-in throttling, organisations, users, errors."""

from __future__ import annotations

from booking.domain.organizations import make_uscc
from booking.models.accounts import Organization
from booking.models.audit import AuditEvent
from tests.factories.accounts import PASSWORD


def test_token_for_right_password_and_me(client, make_org, make_user, session):
    org = make_org("enterprise", name="太原某新材料有限公司")
    user = make_user(org, email="Li.Na@Example.cn")
    session.commit()
    answer = client.post(
        "/api/v1/auth/tokens", json={"email": "li.na@example.cn", "password": PASSWORD}
    )
    assert answer.status_code == 201
    body = answer.get_json()
    assert len(body["token"]) >= 40 and body["expires_at"].endswith("+08:00")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.get_json()["id"] == user.id
    assert me.get_json()["memberships"][0]["organization_name"] == "太原某新材料有限公司"


def test_wrong_password_and_unknown_email_look_the_same(client, make_user, session):
    make_user(email="known@example.cn")
    session.commit()
    wrong = client.post(
        "/api/v1/auth/tokens", json={"email": "known@example.cn", "password": "nope-nope-nope"}
    )
    unknown = client.post(
        "/api/v1/auth/tokens", json={"email": "ghost@example.cn", "password": "nope-nope-nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert wrong.get_json()["error"]["code"] == "unauthorized"


def sign_in(client, email, password, ip="10.0.0.1"):
    return client.post(
        "/api/v1/auth/tokens",
        json={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    )


def test_repeated_failures_lock_the_account_for_a_while(client, make_user, session, app):
    make_user(email="victim@example.cn")
    session.commit()
    limit = app.config["LOGIN_LOCK_AFTER"]
    answers = [
        sign_in(client, "victim@example.cn", "wrong-password-x").status_code for _ in range(limit)
    ]
    assert answers[:-1] == [401] * (limit - 1)
    assert answers[-1] == 429
    # Locked: even the right password is refused, from another address too.
    locked = sign_in(client, "victim@example.cn", PASSWORD, ip="10.9.9.9")
    assert locked.status_code == 429
    assert locked.get_json()["error"]["code"] == "too_many_requests"
    assert session.query(AuditEvent).filter_by(action="auth.locked").count() == 1


def test_the_lock_ends_after_its_time(client, make_user, session, app):
    import time_machine

    make_user(email="later@example.cn")
    session.commit()
    with time_machine.travel("2026-11-23 10:00:00+08:00", tick=False) as traveller:
        for _ in range(app.config["LOGIN_LOCK_AFTER"]):
            sign_in(client, "later@example.cn", "wrong-password-x")
        assert sign_in(client, "later@example.cn", PASSWORD).status_code == 429
        traveller.shift(60 * (app.config["LOGIN_LOCK_MINUTES"] + 1))
        assert sign_in(client, "later@example.cn", PASSWORD).status_code == 201


def test_many_failures_from_one_address_lock_that_address(client, make_user, session):
    make_user(email="someone@example.cn")
    session.commit()
    for n in range(30):
        sign_in(client, f"guess{n}@example.cn", "wrong-password-x", ip="10.6.6.6")
    assert sign_in(client, "someone@example.cn", PASSWORD, ip="10.6.6.6").status_code == 429
    assert sign_in(client, "someone@example.cn", PASSWORD, ip="10.7.7.7").status_code == 201


def test_tokens_expire_and_can_be_revoked(client, make_user, session):
    import time_machine

    make_user(email="tok@example.cn")
    session.commit()
    with time_machine.travel("2026-11-23 10:00:00+08:00", tick=False) as traveller:
        token = sign_in(client, "tok@example.cn", PASSWORD).get_json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/me", headers=headers).status_code == 200
        traveller.shift(91 * 24 * 3600)
        expired = client.get("/api/v1/me", headers=headers)
        assert expired.status_code == 401
        token = sign_in(client, "tok@example.cn", PASSWORD).get_json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.delete("/api/v1/auth/tokens/current", headers=headers).status_code == 204
        assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_tokens_are_stored_hashed(client, make_user, session):
    from booking.models.accounts import ApiToken

    make_user(email="hash@example.cn")
    session.commit()
    token = sign_in(client, "hash@example.cn", PASSWORD).get_json()["token"]
    stored = session.query(ApiToken).one()
    assert token not in stored.token_hash and len(stored.token_hash) == 64


def test_me_needs_a_token(client):
    answer = client.get("/api/v1/me", headers={"Accept-Language": "en"})
    assert answer.status_code == 401
    assert answer.get_json() == {
        "error": {"code": "unauthorized", "message": "Please sign in.", "details": {}}
    }


def org_body(**overrides):
    body = {
        "kind": "enterprise",
        "name": "山西晋能新材料科技有限公司",
        "uscc": make_uscc("140105", 777),
        "region": "140105",
        "size_class": "small",
        "tech_sme_number": "202614010500001",
        "tech_sme_year": 2026,
    }
    body.update(overrides)
    return body


def test_platform_admin_registers_an_organisation(client, platform_admin, auth_headers, session):
    headers = auth_headers(platform_admin)
    answer = client.post("/api/v1/organizations", json=org_body(), headers=headers)
    assert answer.status_code == 201, answer.get_json()
    created = session.get(Organization, answer.get_json()["id"])
    assert created.name == "山西晋能新材料科技有限公司"
    assert session.query(AuditEvent).filter_by(action="organization.create").count() == 1


def test_bad_credit_code_and_region_are_named_in_both_languages(
    client, platform_admin, auth_headers, session
):
    body = org_body(uscc="91110000600037341M", region="149999")
    zh = client.post("/api/v1/organizations", json=body, headers=auth_headers(platform_admin))
    assert zh.status_code == 422
    fields = zh.get_json()["error"]["details"]["fields"]
    assert set(fields) == {"uscc", "region"}
    assert "统一社会信用代码" in fields["uscc"][0]
    en = client.post(
        "/api/v1/organizations", json=body, headers=auth_headers(platform_admin, locale="en")
    )
    assert en.get_json()["error"]["message"] == "Some fields are not valid."
    assert en.get_json()["error"]["details"]["fields"]["uscc"] == [
        "Not a valid unified social credit code."
    ]
    assert session.query(Organization).filter_by(kind="enterprise").count() == 0


def test_duplicate_credit_code_is_refused(client, platform_admin, auth_headers, session):
    headers = auth_headers(platform_admin)
    assert client.post("/api/v1/organizations", json=org_body(), headers=headers).status_code == 201
    again = client.post("/api/v1/organizations", json=org_body(name="另一家"), headers=headers)
    assert again.status_code == 422
    assert "uscc" in again.get_json()["error"]["details"]["fields"]


def test_wrong_types_and_missing_fields_are_each_named(client, platform_admin, auth_headers):
    answer = client.post(
        "/api/v1/organizations",
        json={"kind": "castle", "name": 5, "region": "140105", "extra": 1},
        headers=auth_headers(platform_admin, "en"),
    )
    assert answer.status_code == 422
    assert set(answer.get_json()["error"]["details"]["fields"]) == {"kind", "name", "uscc", "extra"}


def test_malformed_json_is_400(client, platform_admin, auth_headers):
    answer = client.post(
        "/api/v1/organizations",
        data="{not json",
        content_type="application/json",
        headers=auth_headers(platform_admin),
    )
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "bad_request"


def test_only_platform_admins_register_organisations(client, make_org, make_user, auth_headers):
    customer = make_user(make_org("enterprise"), role="admin")
    answer = client.post("/api/v1/organizations", json=org_body(), headers=auth_headers(customer))
    assert answer.status_code == 403


def test_another_enterprise_is_not_found(client, make_org, make_user, auth_headers):
    mine, theirs = make_org("enterprise"), make_org("enterprise")
    user = make_user(mine)
    assert (
        client.get(f"/api/v1/organizations/{mine.id}", headers=auth_headers(user)).status_code
        == 200
    )
    hidden = client.get(f"/api/v1/organizations/{theirs.id}", headers=auth_headers(user))
    assert hidden.status_code == 404
    assert client.get("/api/v1/organizations/99999", headers=auth_headers(user)).status_code == 404


def test_users_are_created_with_memberships_and_unique_emails(
    client, platform_admin, auth_headers, make_org, session
):
    lab = make_org("provider")
    headers = auth_headers(platform_admin)
    body = {
        "email": "Lab.Admin@Example.cn",
        "password": "a-long-enough-password",
        "name": "张老师",
        "memberships": [{"organization_id": lab.id, "role": "admin"}],
    }
    created = client.post("/api/v1/users", json=body, headers=headers)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["email"] == "lab.admin@example.cn"
    assert "password" not in created.get_json()
    again = client.post(
        "/api/v1/users", json={**body, "email": "lab.admin@EXAMPLE.cn"}, headers=headers
    )
    assert again.status_code == 422
    weak = client.post(
        "/api/v1/users",
        json={**body, "email": "x@example.cn", "password": "short"},
        headers=headers,
    )
    assert "password" in weak.get_json()["error"]["details"]["fields"]
    unknown_org = client.post(
        "/api/v1/users",
        json={
            **body,
            "email": "y@example.cn",
            "memberships": [{"organization_id": 999, "role": "admin"}],
        },
        headers=headers,
    )
    assert unknown_org.status_code == 422


def test_passwords_are_hashed_with_argon2(client, platform_admin, auth_headers, session):
    from booking.models.accounts import User

    body = {"email": "p@example.cn", "password": "a-long-enough-password", "name": "P"}
    client.post("/api/v1/users", json=body, headers=auth_headers(platform_admin))
    stored = session.query(User).filter_by(email="p@example.cn").one()
    assert stored.password_hash.startswith("$argon2id$")


def test_idempotency_key_replays_the_first_answer(client, platform_admin, auth_headers, session):
    headers = {**auth_headers(platform_admin), "Idempotency-Key": "org-create-1"}
    first = client.post("/api/v1/organizations", json=org_body(), headers=headers)
    second = client.post("/api/v1/organizations", json=org_body(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert session.query(Organization).filter_by(kind="enterprise").count() == 1
    other_body = client.post(
        "/api/v1/organizations", json=org_body(name="不同的名称"), headers=headers
    )
    assert other_body.status_code == 422
    assert other_body.get_json()["error"]["details"]["rule"] == "idempotency_key_reused"


def test_openapi_document_is_generated_and_lists_the_error_shape(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/organizations" in spec["paths"]
    assert "/api/v1/auth/tokens" in spec["paths"]
    assert "error" in spec["components"]["schemas"]["Error"]["properties"]


def test_common_and_personal_passwords_are_refused(client, platform_admin, auth_headers):
    headers = auth_headers(platform_admin, "en")
    for password in ("password123", "qwertyuiop", "zhangwei2026", "1234567890"):
        answer = client.post(
            "/api/v1/users",
            json={"email": "zhangwei@example.cn", "password": password, "name": "zhangwei"},
            headers=headers,
        )
        assert answer.status_code == 422, password
        assert answer.get_json()["error"]["details"]["fields"]["password"]


def test_a_provider_registered_as_voucher_provider_is_admitted_at_once(
    client, platform_admin, auth_headers, session
):
    from booking.services import admissions

    body = org_body(kind="provider", name="山西大学分析测试中心", voucher_provider=True)
    for key in ("size_class", "tech_sme_number", "tech_sme_year"):
        body.pop(key)
    answer = client.post("/api/v1/organizations", json=body, headers=auth_headers(platform_admin))
    assert answer.status_code == 201, answer.get_json()
    provider = session.get(Organization, answer.get_json()["id"])
    admission = admissions.current_admission(session, provider.id)
    assert admission is not None and admission.status == "admitted"


def test_a_token_records_its_use_at_most_once_a_minute(client, make_user, session):
    import time_machine

    from booking.models.accounts import ApiToken

    make_user(email="poll@example.cn")
    session.commit()
    with time_machine.travel("2026-11-23 10:00:00+08:00", tick=False) as traveller:
        token = sign_in(client, "poll@example.cn", PASSWORD).get_json()["token"]
        headers = {"Authorization": f"Bearer {token}"}

        def last_used():
            session.expire_all()
            return session.query(ApiToken).one().last_used_at

        assert client.get("/api/v1/me", headers=headers).status_code == 200
        first = last_used()
        assert first is not None
        traveller.shift(30)
        assert client.get("/api/v1/me", headers=headers).status_code == 200
        assert last_used() == first
        traveller.shift(61)
        assert client.get("/api/v1/me", headers=headers).status_code == 200
        assert (last_used() - first).total_seconds() == 91


def test_a_token_speaks_only_for_active_organisations(client, make_org, make_user, session):
    from booking.models.accounts import Membership, OrgStatus, Role

    active = make_org("enterprise", name="在册企业")
    pending = make_org("enterprise", name="待审企业")
    user = make_user(active, email="two@example.cn")
    session.add(Membership(user_id=user.id, organization_id=pending.id, role=Role.ADMIN))
    pending.status = OrgStatus.PENDING
    session.commit()
    token = sign_in(client, "two@example.cn", PASSWORD).get_json()["token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    names = [m["organization_name"] for m in me.get_json()["memberships"]]
    assert "在册企业" in names
    # The pending organisation's admin rights do not ride on the token.
    own = client.get(
        f"/api/v1/organizations/{pending.id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert own.status_code == 404
    user.active = False
    session.commit()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_only_a_read_commits_its_last_used_time_without_waiting_for_the_disk(
    client, make_user, session, app
):
    import time_machine
    from sqlalchemy import event

    from booking.extensions import db

    make_user(email="durable@example.cn")
    session.commit()
    seen: list[str] = []

    def note(conn, cursor, statement, params, context, many):
        seen.append(statement)

    postgres = session.get_bind().dialect.name == "postgresql"
    with time_machine.travel("2026-11-23 10:00:00+08:00", tick=False) as traveller:
        token = sign_in(client, "durable@example.cn", PASSWORD).get_json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        event.listen(db.engine, "before_cursor_execute", note)
        try:
            assert client.get("/api/v1/me", headers=headers).status_code == 200
            read = list(seen)
            seen.clear()
            traveller.shift(120)  # the last use is old again: this write records it too
            assert client.delete("/api/v1/auth/tokens/current", headers=headers).status_code == 204
            write = list(seen)
        finally:
            event.remove(db.engine, "before_cursor_execute", note)
    assert any("last_used_at" in s for s in read) and any("last_used_at" in s for s in write)
    assert any("synchronous_commit" in s for s in read) == postgres
    assert not any("synchronous_commit" in s for s in write)

"""The access matrix: every endpoint of the URL map × every role.

One world holds two of everything: region A (Taiyuan, 1401xx) with its
bureau, an enterprise, a lab and their people and objects, and region B
(Lüliang, 1411xx) with the same, plus a platform admin. Every URL parameter
is filled with the id of one of A's objects; each role asks every GET, and
the answer must be of the expected class:

- ``ok``: 2xx; ``login``: a redirect to the sign-in page (pages, anonymous);
- ``401``: the API without a token; ``404``: the caller may not see the
  object (nothing tells it exists); ``403``: seen but refused.

The expectations are a table keyed by endpoint name; the table must name
exactly the endpoints of ``app.url_map`` (and their methods), so a new
endpoint fails ``test_every_endpoint_has_its_expectations`` until someone
decides who may call it. Callers of region B must not find A's confidential
strings (the booking's purpose, the customer's name and e-mail) in any
answer. State-changing methods are asked by every outsider, who must be
turned away (401/403/404, or the sign-in redirect) with nothing changed.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from booking.domain import clock
from booking.extensions import db as _db
from booking.models.catalog import Blackout, ResourceApprover, ResourcePhoto
from booking.models.notifications import Notification, OutboxAttachment, OutboxMail
from booking.models.reservations import WaitlistEntry
from booking.models.vouchers import CmaCertificate, ProviderAdmission, RelatedPartyDeclaration
from booking.services import accounts
from booking.services import claims as claim_service
from tests.factories.accounts import PASSWORD, create_org, create_user
from tests.factories.catalog import create_resource
from tests.factories.claims import evidence_for, paid_booking
from tests.factories.feeds import create_feed_token
from tests.factories.training import create_training
from tests.factories.vouchers import (
    create_bureau,
    create_enterprise,
    create_policy,
    create_voucher,
    local,
    officer_of,
)

ROLES = ("anon", "cust_a", "cust_b", "lab_a", "lab_b", "bureau_a", "bureau_b", "admin")
B_SIDE = ("cust_b", "lab_b", "bureau_b")

PURPOSE_A = "甲方绝密工艺-ZX7配方验证"
CUSTOMER_A_NAME = "甲客户杜若衡"
CUSTOMER_A_EMAIL = "duruoheng@secret-a.example.cn"


@pytest.fixture(autouse=True)
def _march(time_machine):
    time_machine.move_to(local(2026, 3, 2, 10), tick=False)


# --- the world -----------------------------------------------------------------------------


@dataclass
class Side:
    bureau: object
    officer: object
    policy: object
    enterprise: object
    customer: object
    lab: object
    lab_admin: object
    lab_member: object
    resource: object
    voucher: object


def build_side(session, platform_actor, bureau_region, local_region, tag, **customer) -> Side:
    from booking.services import admissions

    bureau = create_bureau(session, bureau_region, name=f"{tag}科技局")
    officer = officer_of(session, bureau)
    policy = create_policy(session, bureau)
    enterprise = create_enterprise(session, local_region, name=f"{tag}企业有限公司")
    customer_user = create_user(session, enterprise, "member", **customer)
    lab = create_org(session, "provider", region=local_region, name=f"{tag}分析测试中心")
    admissions.admit_at_once(session, platform_actor, lab, "matrix")
    lab_admin = create_user(session, lab, "admin")
    lab_member = create_user(session, lab, "member")
    resource = create_resource(session, lab, name_zh=f"{tag}扫描电镜")
    voucher = create_voucher(session, bureau, enterprise, "10000.00", officer=officer)
    return Side(
        bureau,
        officer,
        policy,
        enterprise,
        customer_user,
        lab,
        lab_admin,
        lab_member,
        resource,
        voucher,
    )


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()


@dataclass
class World:
    a: Side
    b: Side
    admin: object
    params: dict
    users: dict
    feed_token: str


def build_world(session) -> World:
    platform = create_org(session, "platform", region="140000", name="平台运营方")
    admin = create_user(session, platform, "admin", platform_admin=True)
    platform_actor = accounts.actor_for(admin)
    a = build_side(
        session,
        platform_actor,
        "140100",
        "140105",
        "甲",
        name=CUSTOMER_A_NAME,
        email=CUSTOMER_A_EMAIL,
    )
    b = build_side(session, platform_actor, "141100", "141102", "乙")
    session.flush()

    @dataclass
    class _W:  # what paid_booking needs
        resource: object
        enterprise: object
        customer: object
        voucher: object
        lab_admin: object

    booking = paid_booking(
        session,
        _W(a.resource, a.enterprise, a.customer, a.voucher, a.lab_admin),
        local(2026, 3, 3, 9),
        purpose=PURPOSE_A,
    )
    claim = claim_service.create_claim(
        session,
        accounts.actor_for(a.lab_admin),
        {
            "period_from": date(2026, 3, 1),
            "period_to": date(2026, 3, 31),
            "lines": evidence_for(booking),
        },
    )
    now = clock.now()
    blackout = Blackout(
        resource_id=a.resource.id,
        start_at=now + timedelta(days=3),
        end_at=now + timedelta(days=4),
        reason="维护",
    )
    image = png()
    photo = ResourcePhoto(
        resource_id=a.resource.id,
        content_type="image/png",
        data=image,
        thumbnail=image,
        width=8,
        height=8,
    )
    approver = ResourceApprover(resource_id=a.resource.id, user_id=a.lab_member.id)
    cma = CmaCertificate(
        provider_id=a.lab.id,
        number="CMA-A-0001",
        scope="金属材料",
        category_codes=[],
        expires_on=date(2028, 1, 1),
        created_at=now,
    )
    related = RelatedPartyDeclaration(
        org_id=a.enterprise.id,
        related_org_id=a.lab.id,
        relation="shareholding",
        note=PURPOSE_A,
    )
    waiting = WaitlistEntry(
        resource_id=a.resource.id,
        customer_org_id=a.enterprise.id,
        user_id=a.customer.id,
        start_at=now + timedelta(days=5),
        end_at=now + timedelta(days=5, hours=2),
        purpose=PURPOSE_A,
        created_at=now,
    )
    note = Notification(
        user_id=a.customer.id,
        kind="approved",
        message=PURPOSE_A,
        dedupe_key="matrix-note",
    )
    mail = OutboxMail(
        dedupe_key="matrix-mail",
        message_id="<matrix@example.cn>",
        user_id=a.customer.id,
        kind="approved",
        locale="zh_CN",
        recipient=CUSTOMER_A_EMAIL,
        subject=PURPOSE_A,
        text_body=PURPOSE_A,
        html_body=f"<p>{PURPOSE_A}</p>",
    )
    session.add_all([blackout, photo, approver, cma, related, waiting, note, mail])
    session.flush()
    attachment = OutboxAttachment(
        mail_id=mail.id, filename="invite.ics", content_type="text/calendar", data=b"BEGIN"
    )
    session.add(attachment)
    record = create_training(session, a.customer, resource=a.resource, granted_by=a.lab_admin)
    feed_token, feed = create_feed_token(session, a.customer, a.enterprise, "me")
    admission = session.scalar(
        select(ProviderAdmission).where(ProviderAdmission.provider_id == a.lab.id)
    )
    session.commit()
    params = {
        "org_id": a.enterprise.id,
        "provider_id": a.lab.id,
        "resource_id": a.resource.id,
        "reservation_id": booking.id,
        "claim_id": claim.id,
        "line_id": claim.lines[0].id,
        "voucher_id": a.voucher.id,
        "policy_id": a.policy.id,
        "admission_id": admission.id,
        "certificate_id": cma.id,
        "declaration_id": related.id,
        "feed_id": feed.id,
        "token": feed_token,
        "notification_id": note.id,
        "mail_id": mail.id,
        "attachment_id": attachment.id,
        "record_id": record.id,
        "entry_id": waiting.id,
        "blackout_id": blackout.id,
        "photo_id": photo.id,
        "user_id": a.lab_member.id,
        "year": 2026,
        "code": "national",
        "action": "confirm",
        "filename": "css/site.css",
    }
    users = {
        "cust_a": a.customer,
        "cust_b": b.customer,
        "lab_a": a.lab_admin,
        "lab_b": b.lab_admin,
        "bureau_a": a.officer,
        "bureau_b": b.officer,
        "admin": admin,
    }
    return World(a, b, admin, params, users, feed_token)


# --- asking ---------------------------------------------------------------------------------

PARAM = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


def url_of(rule, params) -> str:
    return PARAM.sub(lambda m: str(params[m.group(1)]), rule.rule)


def csrf_of(page: bytes) -> str | None:
    match = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        rb'<meta name="csrf-token" content="([^"]+)"', page
    )
    return match.group(1).decode() if match else None


@dataclass
class Caller:
    role: str
    page: object  # a test client, signed in for pages
    headers: dict  # the API token
    csrf: str | None

    def ask(self, method, url, **kw):
        api = url.startswith("/api/")
        headers = dict(self.headers) if api else {}
        return self.page.open(url, method=method, headers=headers, **kw)


def callers_for(app, session, world: World) -> dict[str, Caller]:
    callers = {}
    for role in ROLES:
        client = app.test_client()
        headers = {}
        if role != "anon":
            user = world.users[role]
            login = client.get("/login")
            token = csrf_of(login.data)
            answer = client.post(
                "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
            )
            assert answer.status_code == 302, (role, answer.status_code)
            secret, _ = accounts.issue_token(session, user, days=1)
            session.commit()
            headers = {"Authorization": f"Bearer {secret}"}
        csrf = csrf_of(client.get("/login" if role == "anon" else "/account").data)
        callers[role] = Caller(role, client, headers, csrf)
    return callers


SETTLEMENT = "?from=2026-01-01&to=2026-03-31&group_by=enterprise"
QUERY = {
    "reports_pages.settlement_download": SETTLEMENT + "&format=xlsx",
    "reports_api.voucher_settlement": SETTLEMENT + "&format=csv",
    "reports_pages.open_sharing_download": "?year=2026&format=xlsx",
    "reports_api.open_sharing_report": "?year=2026&format=csv",
    "reservations_api.resource_availability": (
        "?from=2026-03-09T00:00:00%2B08:00&to=2026-03-10T00:00:00%2B08:00"
    ),
}


def readable(answer) -> bytes:
    """The answer's bytes; a zip (xlsx) answer's members unpacked."""
    data = answer.get_data()
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return b"".join(archive.read(name) for name in archive.namelist())
    return data


def status_class(answer) -> str:
    code = answer.status_code
    if 200 <= code < 300:
        return "ok"
    if code in (301, 302, 303, 307, 308):
        where = answer.headers.get("Location", "")
        return "login" if "/login" in where else "redirect"
    return str(code)


# Asked apart, not by outsiders: they act on the caller's own session or token.
OWN_SESSION = {
    ("accounts_api.revoke_current_token", "DELETE"),
    ("accounts_pages.logout", "POST"),
}

# The feed URL's secret is the credential (calendar programs cannot sign in):
# whoever holds it reads the feed, by design (see booking/authz/feeds.py).
LEAK_EXEMPT = {"feeds_pages.token_feed"}

# Report exports carry organisation names, never people's names, e-mails or
# what a booking was for (the world's paid voucher booking is in them).
EXPORTS = {
    "reports_pages.settlement_download",
    "reports_pages.open_sharing_download",
    "reports_api.voucher_settlement",
    "reports_api.open_sharing_report",
}

BODIES = {
    ("vouchers_api.reject_admission", "POST"): {"reason": "matrix"},
    ("vouchers_api.suspend_admission", "POST"): {"reason": "matrix"},
    ("vouchers_api.revoke_voucher", "POST"): {"reason": "matrix"},
    ("reservations_api.reject", "POST"): {"reason": "matrix"},
    ("claims_api.reject_claim", "POST"): {"reason": "matrix"},
    ("reservations_api.rate", "POST"): {"score": 1},
    ("vouchers_api.adjust_voucher", "POST"): {"amount": "-1.00", "reason": "matrix"},
}


def body_for(endpoint, method, world: World, caller: Caller, url: str) -> dict:
    if url.startswith("/api/"):
        if (endpoint, method) == ("approvals_api.decide", "POST"):
            return {"json": {"approve": [world.params["reservation_id"]]}}
        return {"json": BODIES.get((endpoint, method), {})}
    form = {"csrf_token": caller.csrf}
    if (endpoint, method) == ("approvals_pages.decide", "POST"):
        form.update(ids=str(world.params["reservation_id"]), action="approve", reason="x")
    return {"data": form}


def fingerprint(session) -> dict[str, list]:
    """Every row of every table (the world is small)."""
    session.expire_all()
    tables = {}
    for table in _db.metadata.sorted_tables:
        rows = session.execute(select(table)).all()
        tables[table.name] = sorted(repr(tuple(row)) for row in rows)
    return tables


def asked_rules(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


EXPECT: dict[tuple[str, str], str] = {
    # cells in the order of ROLES:
    # anon cust_a cust_b lab_a lab_b bureau_a bureau_b admin
    ("home.index", "GET"): "ok ok ok ok ok ok ok ok",
    ("accounts_pages.account", "GET"): "login ok ok ok ok ok ok ok",
    ("accounts_pages.account", "POST"): "login - ok - ok - ok -",
    ("platform_admin_pages.home", "GET"): "login 403 403 403 403 403 403 ok",
    ("catalog_pages.calendar_admin", "GET"): "login 404 404 404 404 404 404 ok",
    ("catalog_pages.calendar_admin", "POST"): "login - 404 - 404 - 404 -",
    ("accounts_pages.organizations", "GET"): "login 403 403 403 403 ok ok ok",
    ("accounts_pages.organization_action", "POST"): "login - 404 - 404 - 404 -",
    ("accounts_pages.users", "GET"): "login 403 403 403 403 403 403 ok",
    ("vouchers_api.apply_admission", "POST"): "401 - 422 - 422 - 422 -",
    ("vouchers_api.list_admissions", "GET"): "401 ok ok ok ok ok ok ok",
    ("vouchers_api.get_admission", "GET"): "401 404 404 ok 404 ok 404 ok",
    ("vouchers_api.approve_admission", "POST"): "401 - 404 - 404 - 404 -",
    ("vouchers_api.reinstate_admission", "POST"): "401 - 404 - 404 - 404 -",
    ("vouchers_api.reject_admission", "POST"): "401 - 404 - 404 - 404 -",
    ("vouchers_api.suspend_admission", "POST"): "401 - 404 - 404 - 404 -",
    ("approvals_api.queue", "GET"): "401 403 403 ok ok 403 403 403",
    ("approvals_api.decide", "POST"): "401 - 403 - ok - 403 -",
    ("accounts_api.create_token", "POST"): "422 - 422 - 422 - 422 -",
    ("accounts_api.revoke_current_token", "DELETE"): "- - - - - - - -",
    ("catalog_api.get_calendar_year", "GET"): "ok ok ok ok ok ok ok ok",
    ("catalog_api.put_calendar_year", "PUT"): "401 - 422 - 422 - 422 -",
    ("catalog_api.list_categories", "GET"): "ok ok ok ok ok ok ok ok",
    ("claims_api.create_claim", "POST"): "401 - 422 - 422 - 422 -",
    ("claims_api.list_claims", "GET"): "401 ok ok ok ok ok ok ok",
    ("claims_api.get_claim", "GET"): "401 404 404 ok 404 ok 404 ok",
    ("claims_api.approve_claim", "POST"): "401 404 404 - 404 - 404 -",
    ("claims_api.remove_line", "DELETE"): "401 - 404 - 404 - 404 -",
    ("claims_api.set_evidence", "PATCH"): "401 - 404 - 404 - 404 -",
    ("claims_api.pay_claim", "POST"): "401 - 404 403 404 - 404 -",
    ("claims_api.reject_claim", "POST"): "401 - 404 - 404 - 404 -",
    ("claims_api.submit_claim", "POST"): "401 - 404 - 404 - 404 -",
    ("claims_api.withdraw_claim", "POST"): "401 - 404 - 404 - 404 -",
    ("vouchers_api.withdraw_cma", "POST"): "401 - 403 - 403 - 403 -",
    ("feeds_api.create_feed", "POST"): "401 - 422 - 422 - 422 -",
    ("feeds_api.list_feeds", "GET"): "401 ok ok ok ok ok ok ok",
    ("feeds_api.get_feed", "GET"): "401 ok 404 404 404 404 404 ok",
    ("feeds_api.revoke_feed", "DELETE"): "401 - 404 404 404 - 404 -",
    ("accounts_api.me", "GET"): "401 ok ok ok ok ok ok ok",
    ("notifications_api.list_notifications", "GET"): "401 ok ok ok ok ok ok ok",
    ("notifications_api.mark_read", "POST"): "401 - 404 - 404 - 404 404",
    ("notifications_api.get_preferences", "GET"): "401 ok ok ok ok ok ok ok",
    ("notifications_api.put_preferences", "PUT"): "401 - 422 - 422 - 422 -",
    ("notifications_api.mark_all_read", "POST"): "401 - ok - ok - ok -",
    ("api-docs.openapi_json", "GET"): "ok ok ok ok ok ok ok ok",
    ("accounts_api.create_organization", "POST"): "401 - 422 - 422 - 422 -",
    ("accounts_api.get_organization", "GET"): "401 ok 404 404 404 ok 404 ok",
    ("vouchers_api.declare_related_party", "POST"): "401 - 422 - 422 - 422 -",
    ("vouchers_api.list_related_parties", "GET"): "401 ok 404 404 404 ok 404 ok",
    ("vouchers_api.list_cma", "GET"): "401 ok ok ok ok ok ok ok",
    ("vouchers_api.record_cma", "POST"): "401 - 422 - 422 - 422 -",
    ("vouchers_api.withdraw_related_party", "POST"): "401 - 404 - 404 - 404 -",
    ("reports_api.open_sharing_report", "GET"): "401 403 403 ok ok ok ok ok",
    ("reports_api.list_programmes", "GET"): "401 ok ok ok ok ok ok ok",
    ("reports_api.save_programme", "PUT"): "401 - 422 - 422 - 422 -",
    ("reports_api.voucher_settlement", "GET"): "401 403 403 403 403 ok ok ok",
    ("reservations_api.create_reservation", "POST"): "401 - 422 - 422 - 422 -",
    ("reservations_api.list_reservations", "GET"): "401 ok ok ok ok ok ok ok",
    ("reservations_api.get_reservation", "GET"): "401 ok 404 ok 404 404 404 ok",
    ("reservations_api.approve", "POST"): "401 403 404 - 404 - 404 -",
    ("reservations_api.cancel", "POST"): "401 - 404 - 404 - 404 -",
    ("reservations_api.check_in", "POST"): "401 - 404 - 404 - 404 -",
    ("reservations_api.check_out", "POST"): "401 - 404 - 404 - 404 -",
    ("reservations_api.complete", "POST"): "401 - 404 - 404 - 404 -",
    ("claims_api.get_confirmation", "GET"): "401 ok 404 ok 404 ok 404 ok",
    ("claims_api.confirm", "POST"): "401 - 404 - 404 - 404 -",
    ("reservations_api.no_show", "POST"): "401 - 404 - 404 - 404 -",
    ("reservations_api.rate", "POST"): "401 - 404 403 404 - 404 -",
    ("reservations_api.reject", "POST"): "401 - 404 - 404 - 404 -",
    ("reservations_api.reschedule", "POST"): "401 - 422 - 422 - 422 -",
    ("catalog_api.create_resource", "POST"): "401 - 422 - 422 - 422 -",
    ("catalog_api.search_resources", "GET"): "ok ok ok ok ok ok ok ok",
    ("catalog_api.get_resource", "GET"): "ok ok ok ok ok ok ok ok",
    ("catalog_api.update_resource", "PATCH"): "401 404 404 - 404 - 404 -",
    ("approvals_api.list_approvers", "GET"): "401 404 404 ok 404 404 404 404",
    ("approvals_api.name_approver", "POST"): "401 - 422 - 422 - 422 -",
    ("approvals_api.remove_approver", "DELETE"): "401 - 404 - 404 - 404 -",
    ("reservations_api.resource_availability", "GET"): "ok ok ok ok ok ok ok ok",
    ("catalog_api.add_blackout", "POST"): "401 - 422 - 422 - 422 -",
    ("catalog_api.list_blackouts", "GET"): "ok ok ok ok ok ok ok ok",
    ("catalog_api.delete_blackout", "DELETE"): "401 - 404 - 404 - 404 -",
    ("catalog_api.add_photo", "POST"): "401 - 422 - 422 - 422 -",
    ("catalog_api.delete_photo", "DELETE"): "401 - 404 - 404 404 404 -",
    ("catalog_api.get_prices", "GET"): "ok ok ok ok ok ok ok ok",
    ("catalog_api.put_prices", "PUT"): "401 - 422 - 422 - 422 -",
    ("catalog_api.import_resources", "POST"): "401 - 422 - 422 - 422 -",
    ("catalog_api.import_template", "GET"): "ok ok ok ok ok ok ok ok",
    ("training_api.grant", "POST"): "401 - 422 - 422 - 422 -",
    ("training_api.list_trainings", "GET"): "401 403 403 ok ok 403 403 403",
    ("training_api.get_training", "GET"): "401 ok 404 ok 404 404 404 ok",
    ("training_api.revoke", "POST"): "401 403 404 - 404 - 404 -",
    ("accounts_api.create_user", "POST"): "401 - 422 - 422 - 422 -",
    ("vouchers_api.create_policy", "POST"): "401 - 403 - 403 - - -",
    ("vouchers_api.list_policies", "GET"): "401 ok ok ok ok ok ok ok",
    ("vouchers_api.delete_policy", "DELETE"): "401 - 403 - 403 - 403 -",
    ("vouchers_api.get_policy", "GET"): "401 ok ok ok ok ok ok ok",
    ("vouchers_api.update_policy", "PATCH"): "401 - 403 - 403 - 403 -",
    ("vouchers_api.issue_voucher", "POST"): "401 - 422 - 422 - 422 -",
    ("vouchers_api.list_vouchers", "GET"): "401 ok ok ok ok ok ok ok",
    ("vouchers_api.get_voucher", "GET"): "401 ok 404 404 404 ok 404 ok",
    ("vouchers_api.adjust_voucher", "POST"): "401 - 404 - 404 - 404 403",
    ("vouchers_api.voucher_ledger", "GET"): "401 ok 404 404 404 ok 404 ok",
    ("vouchers_api.quote_voucher", "POST"): "401 - 422 - 422 - 422 -",
    ("vouchers_api.revoke_voucher", "POST"): "401 403 404 - 404 - 404 -",
    ("vouchers_api.issue_batch", "POST"): "401 - 422 - 422 - 422 -",
    ("reservations_api.join_waitlist", "POST"): "401 - 422 - 422 - 422 -",
    ("reservations_api.list_waitlist", "GET"): "401 ok ok ok ok ok ok ok",
    ("reservations_api.leave_waitlist", "DELETE"): "401 - 404 - 404 - 404 -",
    ("reservations_api.accept_offer", "POST"): "401 - 404 - 404 - 404 -",
    ("reservations_api.decline_offer", "POST"): "401 - 404 - 404 - 404 -",
    ("approvals_pages.queue", "GET"): "login 403 403 ok ok 403 403 403",
    ("approvals_pages.decide", "POST"): "login - 403 - redirect - 403 -",
    ("bookings_pages.mine", "GET"): "login ok ok ok ok ok ok ok",
    ("bookings_pages.detail", "GET"): "login ok 404 ok 404 404 404 ok",
    ("bookings_pages.cancel", "POST"): "login - 404 - 404 - 404 -",
    ("bookings_pages.rate", "POST"): "login - 404 - 404 - 404 -",
    ("bookings_pages.reschedule", "GET"): "login ok 404 ok 404 404 404 403",
    ("bookings_pages.reschedule", "POST"): "login - 404 - 404 - 404 -",
    ("bureau_pages.home", "GET"): "login 403 403 403 403 ok ok 403",
    ("bureau_pages.batch", "GET"): "login 403 403 403 403 ok ok 403",
    ("bureau_pages.batch", "POST"): "login - 403 - 403 - 422 -",
    ("bureau_pages.batch_template", "GET"): "login ok ok ok ok ok ok ok",
    ("bureau_pages.issue", "GET"): "login 403 403 403 403 ok ok 403",
    ("bureau_pages.issue", "POST"): "login - 403 - 403 - 422 -",
    ("catalog_pages.index", "GET"): "ok ok ok ok ok ok ok ok",
    ("catalog_pages.photo", "GET"): "ok ok ok ok ok ok ok ok",
    ("catalog_pages.photo_thumbnail", "GET"): "ok ok ok ok ok ok ok ok",
    ("catalog_pages.resource", "GET"): "ok ok ok ok ok ok ok ok",
    ("bookings_pages.new", "GET"): "login ok ok ok ok ok ok ok",
    ("bookings_pages.new", "POST"): "login - 422 - 422 - 422 -",
    ("bookings_pages.estimate", "GET"): "login ok ok ok ok ok ok ok",
    ("redemption_pages.index", "GET"): "login ok ok ok ok ok ok ok",
    ("redemption_pages.detail", "GET"): "login 404 404 ok 404 ok 404 ok",
    ("redemption_pages.audit", "POST"): "login - 404 - 404 - 404 -",
    ("redemption_pages.evidence", "POST"): "login - 404 - 404 - 404 -",
    ("redemption_pages.remove_line", "POST"): "login - 404 - 404 - 404 -",
    ("redemption_pages.pay", "POST"): "login - 404 403 404 - 404 -",
    ("redemption_pages.submit", "POST"): "login - 404 - 404 - 404 -",
    ("redemption_pages.withdraw", "POST"): "login - 404 - 404 - 404 -",
    ("redemption_pages.new", "GET"): "login ok ok ok ok ok ok ok",
    ("redemption_pages.new", "POST"): "login - 422 - 422 - 422 -",
    ("feeds_pages.create", "POST"): "login - 422 - 422 - 422 -",
    ("feeds_pages.index", "GET"): "login ok ok ok ok ok ok ok",
    ("feeds_pages.revoke", "POST"): "login - 404 - 404 - 404 -",
    ("home.healthz", "GET"): "ok ok ok ok ok ok ok ok",
    ("feeds_pages.token_feed", "GET"): "ok ok ok ok ok ok ok ok",
    ("feeds_pages.resource_feed", "GET"): "ok ok ok ok ok ok ok ok",
    ("lab_pages.dashboard", "GET"): "login 403 403 ok ok 403 403 403",
    ("lab_pages.approve", "POST"): "login 403 404 - 404 - 404 -",
    ("lab_pages.check_in", "POST"): "login - 404 - 404 - 404 -",
    ("lab_pages.check_out", "POST"): "login - 404 - 404 - 404 -",
    ("lab_pages.complete", "GET"): "login 403 404 ok 404 404 404 403",
    ("lab_pages.complete", "POST"): "login - 404 - 404 - 404 -",
    ("lab_pages.no_show", "POST"): "login - 404 - 404 - 404 -",
    ("lab_pages.reject", "POST"): "login - 404 - 404 - 404 -",
    ("catalog_pages.lab_resources", "GET"): "login 404 404 ok ok 404 404 404",
    ("approvals_pages.add_approver", "POST"): "login - 404 - 404 - 404 -",
    ("approvals_pages.approvers", "GET"): "login 404 404 ok 404 404 404 404",
    ("approvals_pages.remove_approver", "POST"): "login - 404 - 404 - 404 -",
    ("catalog_pages.lab_blackouts", "GET"): "login 404 404 ok 404 404 404 404",
    ("catalog_pages.lab_blackouts", "POST"): "login - 404 - 404 - 404 -",
    ("catalog_pages.lab_delete_blackout", "POST"): "login - 404 - 404 - 404 -",
    ("catalog_pages.lab_edit_resource", "GET"): "login 404 404 ok 404 404 404 404",
    ("catalog_pages.lab_edit_resource", "POST"): "login - 404 - 404 - 404 -",
    ("catalog_pages.lab_hours", "GET"): "login 404 404 ok 404 404 404 404",
    ("catalog_pages.lab_hours", "POST"): "login - 404 - 404 - 404 -",
    ("catalog_pages.lab_photos", "GET"): "login 404 404 ok 404 404 404 404",
    ("catalog_pages.lab_photos", "POST"): "login - 404 - 404 - 404 -",
    ("catalog_pages.lab_delete_photo", "POST"): "login - 404 - 404 - 404 -",
    ("catalog_pages.lab_prices", "GET"): "login 404 404 ok 404 404 404 404",
    ("catalog_pages.lab_prices", "POST"): "login - 404 - 404 - 404 -",
    ("catalog_pages.lab_import", "GET"): "login 404 404 ok ok 404 404 404",
    ("catalog_pages.lab_import", "POST"): "login - 404 - 422 - 404 -",
    ("catalog_pages.lab_import_template", "GET"): "login ok ok ok ok ok ok ok",
    ("catalog_pages.lab_new_resource", "GET"): "login 404 404 ok ok 404 404 404",
    ("catalog_pages.lab_new_resource", "POST"): "login - 404 - 422 - 404 -",
    ("reservations_pages.schedule", "GET"): "login 403 403 ok ok 403 403 403",
    ("home.set_language", "POST"): "redirect - redirect - redirect - redirect -",
    ("accounts_pages.login", "GET"): "ok ok ok ok ok ok ok ok",
    ("accounts_pages.login", "POST"): "422 - 422 - 422 - 422 -",
    ("accounts_pages.logout", "POST"): "- - - - - - - -",
    ("notifications_pages.inbox", "GET"): "login ok ok ok ok ok ok ok",
    ("notifications_pages.open_notification", "POST"): "login - 404 - 404 - 404 -",
    ("notifications_pages.mark_read", "POST"): "login - 404 - 404 - 404 -",
    ("notifications_pages.preferences", "GET"): "login ok ok ok ok ok ok ok",
    ("notifications_pages.preferences", "POST"): "login - - - - - - -",
    ("notifications_pages.mark_all_read", "POST"): "login - redirect - redirect - redirect -",
    ("notifications_pages.outbox", "GET"): "login 403 403 403 403 403 403 ok",
    ("notifications_pages.outbox_mail", "GET"): "login 403 403 403 403 403 403 ok",
    ("notifications_pages.outbox_attachment", "GET"): "login 403 403 403 403 403 403 ok",
    ("notifications_pages.outbox_mail_html", "GET"): "login 403 403 403 403 403 403 ok",
    ("password_reset_pages.forgot", "GET"): "ok ok ok ok ok ok ok ok",
    ("password_reset_pages.forgot", "POST"): "422 - 422 - 422 - 422 -",
    ("password_reset_pages.reset", "GET"): "410 410 410 410 410 410 410 410",
    ("password_reset_pages.reset", "POST"): "410 - 410 - 410 - 410 -",
    ("reports_pages.index", "GET"): "login ok ok ok ok ok ok ok",
    ("reports_pages.open_sharing", "GET"): "login 403 403 ok ok ok ok ok",
    ("reports_pages.open_sharing_download", "GET"): "login 403 403 ok ok ok ok ok",
    ("reports_pages.settlement", "GET"): "login 403 403 403 403 ok ok ok",
    ("reports_pages.settlement_download", "GET"): "login 403 403 403 403 ok ok ok",
    (
        "bookings_pages.reservation_link",
        "GET",
    ): "redirect redirect redirect redirect redirect redirect redirect redirect",
    ("feeds_pages.reservation_file", "GET"): "401 ok 404 ok 404 404 404 ok",
    ("accounts_pages.signup", "GET"): "ok ok ok ok ok ok ok ok",
    ("accounts_pages.signup", "POST"): "422 - 422 - 422 - 422 -",
    ("static", "GET"): "ok ok ok ok ok ok ok ok",
    ("training_pages.grant", "POST"): "login - 403 - 422 - 403 -",
    ("training_pages.register", "GET"): "login 403 403 ok ok 403 403 403",
    ("training_pages.revoke", "POST"): "login - 404 - 404 - 404 -",
    ("balances_pages.index", "GET"): "login ok ok ok ok ok ok ok",
    ("balances_pages.detail", "GET"): "login ok 404 404 404 ok 404 ok",
    ("vouchers_pages.confirmation", "GET"): "login ok 404 ok 404 ok 404 ok",
    ("vouchers_pages.confirm", "POST"): "login - 404 - 404 - 404 -",
    ("waitlist_pages.index", "GET"): "login ok ok ok ok ok ok ok",
    ("waitlist_pages.detail", "GET"): "login ok 404 404 404 404 404 ok",
    ("waitlist_pages.accept", "POST"): "login - 404 - 404 - 404 -",
    ("waitlist_pages.decline", "POST"): "login - 404 - 404 - 404 -",
    ("waitlist_pages.leave", "POST"): "login - 404 - 404 - 404 -",
}


def test_every_endpoint_has_its_expectations(app):
    routes = {(rule.endpoint, method) for rule, method in asked_rules(app)}
    missing = sorted(routes - EXPECT.keys())
    stale = sorted(EXPECT.keys() - routes)
    assert not missing, f"endpoints without access expectations (add them to EXPECT): {missing}"
    assert not stale, f"expectations of endpoints that no longer exist: {stale}"
    for key, cells in EXPECT.items():
        assert len(cells.split()) == len(ROLES), key


def test_every_role_gets_its_answer_and_region_b_learns_nothing_of_a(app, session):
    world = build_world(session)
    callers = callers_for(app, session, world)
    wrong, leaks = [], []
    exported = set()  # (endpoint, role) whose export names enterprise A

    # Reading: everyone asks every GET.
    for rule, method in asked_rules(app):
        if method != "GET":
            continue
        url = url_of(rule, world.params) + QUERY.get(rule.endpoint, "")
        expected = EXPECT[(rule.endpoint, method)].split()
        for role, want in zip(ROLES, expected, strict=True):
            answer = callers[role].ask("GET", url)
            got = status_class(answer)
            body = readable(answer)
            answer.close()
            if got != want:
                wrong.append(f"GET {url} as {role}: {got}, expected {want}")
            if rule.endpoint in EXPORTS and got == "ok":
                if world.a.enterprise.name.encode() in body:
                    exported.add((rule.endpoint, role))
                for personal in (CUSTOMER_A_NAME, CUSTOMER_A_EMAIL, PURPOSE_A):
                    if personal.encode() in body:
                        leaks.append(f"export GET {url} as {role} carries {personal!r}")
            if role in ("anon", *B_SIDE) and rule.endpoint not in LEAK_EXEMPT:
                for secret in (PURPOSE_A, CUSTOMER_A_NAME, CUSTOMER_A_EMAIL):
                    if secret.encode() in body:
                        leaks.append(f"GET {url} as {role} shows {secret!r}")

    # Changing: the outsiders ask every other method; nothing may change.
    before = fingerprint(session)
    # Every form of the site needs its CSRF token, even from a signed-in user.
    for rule, method in asked_rules(app):
        if method == "GET" or rule.rule.startswith("/api/"):
            continue
        url = url_of(rule, world.params)
        answer = callers["cust_b"].ask(method, url, data={})
        if answer.status_code != 400:
            wrong.append(f"{method} {url} without a CSRF token: {answer.status_code}, expected 400")
        answer.close()
    for rule, method in asked_rules(app):
        if method == "GET" or (rule.endpoint, method) in OWN_SESSION:
            continue
        url = url_of(rule, world.params)
        expected = EXPECT[(rule.endpoint, method)].split()
        for role, want in zip(ROLES, expected, strict=True):
            if want == "-":
                continue
            caller = callers[role]
            answer = caller.ask(method, url, **body_for(rule.endpoint, method, world, caller, url))
            got = status_class(answer)
            body = readable(answer)
            answer.close()
            if got != want:
                wrong.append(f"{method} {url} as {role}: {got}, expected {want}")
            if role in ("anon", *B_SIDE):
                for secret in (PURPOSE_A, CUSTOMER_A_NAME, CUSTOMER_A_EMAIL):
                    if secret.encode() in body:
                        leaks.append(f"{method} {url} as {role} shows {secret!r}")
    after = fingerprint(session)
    changed = {
        name: {
            "added": sorted(set(after[name]) - set(before[name])),
            "removed": sorted(set(before[name]) - set(after[name])),
        }
        for name in before
        if before[name] != after[name]
    }
    assert not wrong, "\n".join(wrong)
    assert not leaks, "\n".join(leaks)
    assert not changed, f"refused requests changed tables: {changed}"
    # The exports checked above did carry A's paid booking (by its organisation).
    assert {
        ("reports_pages.settlement_download", "bureau_a"),
        ("reports_api.voucher_settlement", "bureau_a"),
    } <= exported, exported


def test_own_session_endpoints_act_on_the_callers_own_session_only(app, session):
    """Signing out and revoking the current token touch the caller alone."""
    world = build_world(session)
    callers = callers_for(app, session, world)
    outsider, insider = callers["cust_b"], callers["cust_a"]
    assert insider.ask("DELETE", "/api/v1/auth/tokens/current").status_code == 204
    assert insider.ask("GET", "/api/v1/me").status_code == 401
    assert outsider.ask("GET", "/api/v1/me").status_code == 200
    answer = outsider.page.post("/logout", data={"csrf_token": outsider.csrf})
    assert answer.status_code == 302
    assert status_class(outsider.page.get("/account")) == "login"
    assert insider.page.get("/account").status_code == 200
    assert callers["anon"].ask("DELETE", "/api/v1/auth/tokens/current").status_code == 401

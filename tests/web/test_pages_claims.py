"""The redemption claim pages: the lab gathers a period's voucher-paid
bookings into a draft, adds evidence line by line and files it (what still
stops a line is shown beside it); the bureau audits line by line (a reason
beside the field when rejecting) and pays. CSRF on every post; other
organisations' claims are 404."""

from __future__ import annotations

import re

import pytest

from booking.models.claims import Claim, ClaimStatus
from tests.factories.catalog import create_lab
from tests.factories.claims import EVIDENCE, paid_booking
from tests.factories.vouchers import local
from tests.web.test_pages_accounts import csrf_token
from tests.web.test_pages_approvals import assert_nothing_inline, sign_in


@pytest.fixture(autouse=True)
def _april(time_machine):
    # The vouchers are issued now; the factory's bookings are completed in the days after.
    time_machine.move_to(local(2026, 4, 1, 10), tick=False)


@pytest.fixture
def world(voucher_world, session):
    w = voucher_world()
    w.first = paid_booking(session, w, local(2026, 4, 2, 9), "400.00")
    w.second = paid_booking(session, w, local(2026, 4, 3, 9), "300.00")
    session.commit()
    return w


def make_draft(client, world) -> int:
    sign_in(client, world.lab_admin)
    page = client.get("/claims/new").get_data(as_text=True)
    assert 'value="2026-03-01"' in page and 'value="2026-03-31"' in page  # last month
    answer = client.post(
        "/claims/new",
        data={
            "csrf_token": csrf_token(page.encode()),
            "period_from": "2026-04-01",
            "period_to": "2026-04-30",
            "claimant_org_id": str(world.provider.id),
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return int(answer.headers["Location"].rsplit("/", 1)[1])


def evidence(client, claim_id, line_id, token, **values):
    data = {"csrf_token": token}
    for key, value in {**EVIDENCE, **values}.items():
        data[f"line{line_id}-{key}"] = value
    return client.post(f"/claims/{claim_id}/lines/{line_id}", data=data)


def test_the_lab_gathers_evidences_and_files_a_claim(client, world, session):
    claim_id = make_draft(client, world)
    page = client.get(f"/claims/{claim_id}").get_data(as_text=True)
    assert "¥200.00" in page and "¥150.00" in page  # the vouchers' halves
    assert page.count('class="warn"') == 2  # evidence still missing on both lines
    assert_nothing_inline(page)
    token = csrf_token(page.encode())
    claim = session.get(Claim, claim_id)
    first, second = sorted(claim.lines, key=lambda line: line.reservation_id)

    # Filing now names what is missing, line by line.
    refused = client.post(f"/claims/{claim_id}/submit", data={"csrf_token": token})
    assert refused.status_code == 422
    assert "form-errors" in refused.get_data(as_text=True)

    assert evidence(client, claim_id, first.id, token).status_code == 302
    assert evidence(client, claim_id, second.id, token).status_code == 302
    page = client.get(f"/claims/{claim_id}").get_data(as_text=True)
    assert "No.14012345" in page
    assert page.count('class="ok"') == 2

    assert client.post(f"/claims/{claim_id}/submit").status_code == 400  # no CSRF token
    filed = client.post(f"/claims/{claim_id}/submit", data={"csrf_token": token})
    assert filed.status_code == 302
    session.expire_all()
    assert session.get(Claim, claim_id).status == ClaimStatus.SUBMITTED


def test_evidence_too_long_is_refused_beside_the_field_and_kept(client, world, session):
    claim_id = make_draft(client, world)
    line = session.get(Claim, claim_id).lines[0]
    token = csrf_token(client.get(f"/claims/{claim_id}").data)
    answer = evidence(client, claim_id, line.id, token, invoice_number="N" * 61)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert re.search(rf'id="line{line.id}-invoice_number-error" role="alert">[^<]+', page)
    assert 'value="' + "N" * 61 + '"' in page


def test_an_empty_period_says_why_beside_the_period(client, world):
    sign_in(client, world.lab_admin)
    token = csrf_token(client.get("/claims/new").data)
    answer = client.post(
        "/claims/new",
        data={"csrf_token": token, "period_from": "2026-01-01", "period_to": "2026-01-31"},
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert re.search(r'id="period_from-error" role="alert">[^<]+', page)
    assert 'value="2026-01-31"' in page


def file_it(client, session, world) -> int:
    claim_id = make_draft(client, world)
    token = csrf_token(client.get(f"/claims/{claim_id}").data)
    for line in session.get(Claim, claim_id).lines:
        evidence(client, claim_id, line.id, token)
    assert client.post(f"/claims/{claim_id}/submit", data={"csrf_token": token}).status_code == 302
    client.post("/logout", data={"csrf_token": token})
    return claim_id


def test_the_bureau_audits_line_by_line_and_pays(client, world, session):
    claim_id = file_it(client, session, world)
    session.expire_all()
    first, second = sorted(session.get(Claim, claim_id).lines, key=lambda x: x.reservation_id)
    sign_in(client, world.officer)
    page = client.get(f"/claims/{claim_id}").get_data(as_text=True)
    assert f'name="lines" value="{first.id}"' in page
    token = csrf_token(page.encode())

    no_reason = client.post(
        f"/claims/{claim_id}/audit",
        data={"csrf_token": token, "lines": [str(second.id)], "action": "reject"},
    )
    page = no_reason.get_data(as_text=True)
    assert no_reason.status_code == 422
    assert re.search(r'id="audit-reason-error" role="alert">[^<]+', page)
    assert f'value="{second.id}" id="line-check-{second.id}" checked' in page

    client.post(
        f"/claims/{claim_id}/audit",
        data={
            "csrf_token": token,
            "lines": [str(second.id)],
            "action": "reject",
            "audit-reason": "发票抬头不符",
        },
    )
    client.post(
        f"/claims/{claim_id}/audit",
        data={"csrf_token": token, "lines": [str(first.id)], "action": "approve"},
    )
    session.expire_all()
    claim = session.get(Claim, claim_id)
    assert claim.status == ClaimStatus.AUDITED
    page = client.get(f"/claims/{claim_id}").get_data(as_text=True)
    assert "发票抬头不符" in page
    paid = client.post(
        f"/claims/{claim_id}/pay", data={"csrf_token": token, "pay-payment_reference": "TX-1"}
    )
    assert paid.status_code == 302
    session.expire_all()
    claim = session.get(Claim, claim_id)
    assert claim.status == ClaimStatus.PAID
    assert str(claim.paid_amount) == "200.00"


def test_others_may_not_see_or_touch_a_claim(client, world, session):
    claim_id = make_draft(client, world)
    token = csrf_token(client.get("/claims").data)
    client.post("/logout", data={"csrf_token": token})
    _, stranger, _ = create_lab(session)
    session.commit()
    sign_in(client, stranger)
    assert client.get(f"/claims/{claim_id}").status_code == 404
    token = csrf_token(client.get("/claims").data)
    assert (
        client.post(f"/claims/{claim_id}/withdraw", data={"csrf_token": token}).status_code == 404
    )
    assert f"/claims/{claim_id}" not in client.get("/claims").get_data(as_text=True)
    session.expire_all()
    assert session.get(Claim, claim_id).status == ClaimStatus.DRAFT


def test_the_claimant_may_not_audit(client, world, session):
    claim_id = file_it(client, session, world)
    sign_in(client, world.lab_admin)
    page = client.get(f"/claims/{claim_id}").get_data(as_text=True)
    assert 'name="lines"' not in page
    token = csrf_token(page.encode())
    line = session.get(Claim, claim_id).lines[0]
    answer = client.post(
        f"/claims/{claim_id}/audit",
        data={"csrf_token": token, "lines": [str(line.id)], "action": "approve"},
    )
    assert answer.status_code == 403

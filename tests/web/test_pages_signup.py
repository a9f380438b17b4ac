"""Enterprise sign-up, confirmation by the platform admin, and the account page."""

from booking.domain.organizations import make_uscc
from booking.models.accounts import Organization, OrgStatus, User
from booking.models.audit import AuditEvent
from tests.factories.accounts import PASSWORD
from tests.web.test_pages_accounts import csrf_token


def signup_form(token, **overrides):
    form = {
        "csrf_token": token,
        "org_name": "山西晋能新材料科技有限公司",
        "uscc": make_uscc("140105", 4242),
        "region": "140105",
        "size_class": "small",
        "tech_sme_number": "2026140105A0001234",
        "tech_sme_year": "2026",
        "name": "王经理",
        "phone": "13800000000",
        "email": "wang@jinneng.example.cn",
        "password": "Fenjiu-Pingyao-1999",
    }
    form.update(overrides)
    return form


def sign_in_page(client, email, password=PASSWORD):
    token = csrf_token(client.get("/login").data)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_an_enterprise_signs_up_and_waits_for_confirmation(client, session):
    token = csrf_token(client.get("/signup").data)
    answer = client.post("/signup", data=signup_form(token))
    assert answer.status_code == 302
    org = session.query(Organization).filter_by(name="山西晋能新材料科技有限公司").one()
    assert org.status == OrgStatus.PENDING
    user = session.query(User).filter_by(email="wang@jinneng.example.cn").one()
    assert user.memberships[0].role == "admin"
    page = client.get("/account").get_data(as_text=True)
    assert "待审核" in page
    assert session.query(AuditEvent).filter_by(action="organization.sign_up").count() == 1


def test_a_bad_credit_code_is_shown_beside_the_field_and_the_input_kept(client, session):
    token = csrf_token(client.get("/signup").data)
    answer = client.post("/signup", data=signup_form(token, uscc="91140105MA0L12345X"))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "统一社会信用代码无效" in page
    assert 'value="山西晋能新材料科技有限公司"' in page
    assert 'value="91140105MA0L12345X"' in page
    assert session.query(Organization).count() == 0
    assert session.query(User).count() == 0


def test_platform_admin_confirms_a_pending_enterprise(client, session, platform_admin):
    pending = Organization(
        kind="enterprise",
        name="待审企业",
        uscc=make_uscc("140105", 4343),
        region="140105",
        status=OrgStatus.PENDING,
    )
    session.add(pending)
    session.commit()
    sign_in_page(client, platform_admin.email)
    listing = client.get("/admin/organizations?status=pending")
    assert "待审企业" in listing.get_data(as_text=True)
    answer = client.post(
        f"/admin/organizations/{pending.id}/confirm",
        data={"csrf_token": csrf_token(listing.data)},
    )
    assert answer.status_code == 302
    session.refresh(pending)
    assert pending.status == OrgStatus.ACTIVE
    assert session.query(AuditEvent).filter_by(action="organization.confirm").count() == 1


def test_only_platform_admins_and_bureaus_see_the_organisation_list(
    client, session, make_org, make_user
):
    customer = make_user(make_org("enterprise"), email="c@example.cn")
    session.commit()
    sign_in_page(client, customer.email)
    assert client.get("/admin/organizations").status_code == 403
    assert client.get("/admin/users").status_code == 403


def test_a_user_changes_language_and_password_on_the_account_page(client, session, make_user):
    user = make_user(email="me@example.cn")
    session.commit()
    sign_in_page(client, "me@example.cn")
    page = client.get("/account")
    token = csrf_token(page.data)
    wrong = client.post(
        "/account",
        data={
            "form": "password",
            "csrf_token": token,
            "password-current_password": "nope-nope-1",
            "password-new_password": "Taihang-Mountains-77",
        },
    )
    assert wrong.status_code == 422
    assert "当前密码不正确" in wrong.get_data(as_text=True)
    client.post(
        "/account",
        data={
            "form": "password",
            "csrf_token": token,
            "password-current_password": PASSWORD,
            "password-new_password": "Taihang-Mountains-77",
        },
    )
    client.post(
        "/account",
        data={"form": "profile", "csrf_token": token, "profile-name": "Me", "profile-locale": "en"},
    )
    assert '<html lang="en">' in client.get("/account").get_data(as_text=True)
    session.refresh(user)
    assert user.locale == "en"
    client.post("/logout", data={"csrf_token": token})
    assert sign_in_page(client, "me@example.cn", "Taihang-Mountains-77").status_code == 302

"""The catalog API as API.md writes it: the resource JSON, who may change
what (others get 404), every rule's 422 naming the field with nothing
written, versioned prices, blackouts, photos, bulk import, the calendar."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from PIL import Image
from sqlalchemy import func, select

from booking.models.audit import AuditEvent
from booking.models.catalog import (
    Blackout,
    CalendarDay,
    OpeningHours,
    PriceRule,
    Resource,
    ResourcePhoto,
)
from tests.factories.catalog import sigma_input

NOW = datetime(2030, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 Beijing time, a Friday

RESOURCE_KEYS = {
    "id", "kind", "name_zh", "name_en", "category", "provider_id", "region", "location",
    "manufacturer", "model", "original_value", "capacity", "capacity_unit", "status",
    "voucher_eligible", "service_category", "rules", "opening_hours", "closed_on_holidays",
    "prices",
}  # fmt: skip
RULE_KEYS = {
    "granularity_minutes", "min_minutes", "max_minutes", "lead_minutes", "horizon_days",
    "buffer_before_minutes", "buffer_after_minutes", "requires_approval", "requires_training",
}  # fmt: skip


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def other_lab(session, categories, make_lab, auth_headers):
    provider, admin, _ = make_lab("140109")
    session.commit()
    return {"provider": provider, "headers": auth_headers(admin)}


@pytest.fixture
def customer_headers(session, make_org, make_user, auth_headers):
    user = make_user(make_org("enterprise"))
    session.commit()
    return auth_headers(user)


def counts(session) -> dict[str, int]:
    session.expire_all()
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model))
        for model in (Resource, PriceRule, OpeningHours, Blackout, ResourcePhoto, AuditEvent)
    }


# --- the resource JSON ------------------------------------------------------------


def test_a_created_resource_is_answered_as_api_md_writes_it(client, lab, sigma):
    assert set(sigma) >= RESOURCE_KEYS
    assert set(sigma["rules"]) >= RULE_KEYS
    assert sigma["category"] == "0101"
    assert sigma["provider_id"] == lab["provider"].id
    assert sigma["region"] == "140105"
    assert sigma["capacity"] == 1 and sigma["exclusive"] is True
    assert sigma["status"] == "available" and sigma["service_category"] == "instrument_sharing"
    assert sigma["original_value"] == "2680000.00"
    assert sigma["opening_hours"][:2] == [
        {"weekday": 0, "open": "08:30", "close": "12:00"},
        {"weekday": 0, "open": "14:00", "close": "17:30"},
    ]
    enterprise = next(p for p in sigma["prices"] if p["customer_class"] == "enterprise")
    assert enterprise["unit"] == "hour"
    assert enterprise["unit_price"] == "500.00" and enterprise["setup_fee"] == "50.00"
    assert enterprise["rounding_minutes"] == 30
    assert enterprise["effective_from"].endswith("+08:00")
    again = client.get(f"/api/v1/resources/{sigma['id']}")
    assert again.status_code == 200 and again.get_json() == sigma


def test_anyone_reads_and_searches_the_catalog(client, sigma):
    found = client.get("/api/v1/resources", query_string={"q": "电镜", "per_page": 5})
    body = found.get_json()
    assert found.status_code == 200
    assert body["page"] == 1 and body["per_page"] == 5 and body["total"] == 1
    assert body["items"][0]["id"] == sigma["id"]
    assert client.get("/api/v1/resources/999999").status_code == 404


def test_per_page_is_capped_at_200(client, sigma):
    answer = client.get("/api/v1/resources", query_string={"per_page": 201})
    assert answer.status_code == 422
    assert "per_page" in answer.get_json()["error"]["details"]["fields"]


def test_search_arguments_are_checked(client, sigma):
    answer = client.get(
        "/api/v1/resources", query_string={"kind": "spaceship", "price_min": "1.234"}
    )
    fields = answer.get_json()["error"]["details"]["fields"]
    assert answer.status_code == 422 and set(fields) == {"kind", "price_min"}
    unknown = client.get("/api/v1/resources", query_string={"category": "7777"})
    assert unknown.status_code == 422
    assert unknown.get_json()["error"]["details"]["fields"] == {"category": ["未知的分类。"]}


def test_english_messages_follow_accept_language(client, sigma):
    answer = client.get(
        "/api/v1/resources", query_string={"category": "7777"}, headers={"Accept-Language": "en"}
    )
    assert answer.get_json()["error"]["details"]["fields"] == {"category": ["Unknown category."]}


def test_categories_with_their_children_and_aliases(client, categories):
    items = client.get("/api/v1/categories").get_json()["items"]
    analytical = next(c for c in items if c["code"] == "01")
    microscopes = next(c for c in analytical["children"] if c["code"] == "0101")
    assert microscopes["name_zh"] == "电子显微镜" and "电镜" in microscopes["aliases"]


# --- who may change a resource ---------------------------------------------------------


def test_only_the_owner_labs_admin_changes_a_resource(
    client, lab, other_lab, customer_headers, sigma, session
):
    path = f"/api/v1/resources/{sigma['id']}"
    before = counts(session)
    assert (
        client.patch(path, json={"name_en": "x"}, headers=other_lab["headers"]).status_code == 404
    )
    assert client.patch(path, json={"name_en": "x"}, headers=customer_headers).status_code == 404
    member = client.patch(path, json={"name_en": "x"}, headers=lab["member_headers"])
    assert member.status_code == 403
    assert client.patch(path, json={"name_en": "x"}).status_code == 401
    assert counts(session) == before
    mine = client.patch(path, json={"name_en": "SEM"}, headers=lab["headers"])
    assert mine.status_code == 200 and mine.get_json()["name_en"] == "SEM"


def test_sub_resources_are_the_owners_too(client, other_lab, customer_headers, sigma):
    rid = sigma["id"]
    blackout = {"start": "2030-03-05T08:00", "end": "2030-03-05T12:00", "reason": "维护"}
    for headers in (other_lab["headers"], customer_headers):
        assert (
            client.post(
                f"/api/v1/resources/{rid}/blackouts", json=blackout, headers=headers
            ).status_code
            == 404
        )
        assert (
            client.put(
                f"/api/v1/resources/{rid}/prices", json={"prices": []}, headers=headers
            ).status_code
            == 404
        )
        assert (
            client.get(f"/api/v1/resources/{rid}/prices?history=true", headers=headers).status_code
            == 404
        )


def test_creating_for_another_lab_is_404_and_without_a_lab_403(
    client, lab, other_lab, customer_headers, session
):
    before = counts(session)
    foreign = sigma_input(provider_id=other_lab["provider"].id)
    assert client.post("/api/v1/resources", json=foreign, headers=lab["headers"]).status_code == 404
    assert (
        client.post("/api/v1/resources", json=sigma_input(), headers=customer_headers).status_code
        == 403
    )
    assert client.post("/api/v1/resources", json=sigma_input()).status_code == 401
    assert counts(session) == before


def test_create_and_change_are_audited(client, lab, sigma, session):
    client.patch(
        f"/api/v1/resources/{sigma['id']}",
        json={"rules": {"max_minutes": 240}},
        headers=lab["headers"],
    )
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.target_type == "resources").order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in events] == ["resource.create", "resource.update"]
    assert events[1].actor_user_id == lab["admin"].id
    assert events[1].before == {"max_minutes": 480} and events[1].after == {"max_minutes": 240}


# --- bad input: 422 naming the field, nothing written ----------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "spaceship"}, "kind"),
        ({"category": "9999"}, "category"),
        ({"capacity": 0}, "capacity"),
        ({"capacity": 2}, "capacity"),
        ({"original_value": "-1.00"}, "original_value"),
        ({"original_value": "12.345"}, "original_value"),
        ({"original_value": "lots"}, "original_value"),
        ({"region": "999999"}, "region"),
        ({"rules": {"min_minutes": 600, "max_minutes": 480}}, "rules.max_minutes"),
        ({"rules": {"granularity_minutes": 7}}, "rules.granularity_minutes"),
        (
            {"opening_hours": [{"weekday": 0, "open": "17:30", "close": "08:30"}]},
            "opening_hours.0.close",
        ),
        (
            {
                "opening_hours": [
                    {"weekday": 0, "open": "08:30", "close": "12:00"},
                    {"weekday": 0, "open": "11:00", "close": "13:00"},
                ]
            },
            "opening_hours.1.open",
        ),
        ({"prices": [{"customer_class": "vip", "unit": "hour", "unit_price": "1"}]}, "prices"),
        (
            {"prices": [{"customer_class": "academic", "unit": "sample", "unit_price": "1"}]},
            "prices.0.unit",
        ),
        (
            {"prices": [{"customer_class": "academic", "unit": "parsec", "unit_price": "1"}]},
            "prices",
        ),
        (
            {"prices": [{"customer_class": "academic", "unit": "hour", "unit_price": "-5"}]},
            "prices",
        ),
        (
            {"prices": [{"customer_class": "academic", "unit": "hour", "unit_price": "1.001"}]},
            "prices",
        ),
        (
            {
                "prices": [
                    {
                        "customer_class": "academic",
                        "unit": "hour",
                        "unit_price": "1",
                        "order_min": "9",
                        "order_max": "8",
                    }
                ]
            },
            "prices.0.order_max",
        ),
    ],
)
def test_every_refusal_names_the_field_and_writes_nothing(client, lab, session, changes, field):
    before = counts(session)
    answer = client.post("/api/v1/resources", json=sigma_input(**changes), headers=lab["headers"])
    assert answer.status_code == 422, answer.get_json()
    error = answer.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert field in error["details"]["fields"], error
    assert counts(session) == before


def test_a_hpc_partition_needs_its_capacity_and_a_compute_unit(client, lab, session):
    data = {
        "kind": "hpc",
        "name_zh": "GPU分区",
        "category": "0802",
        "prices": [{"customer_class": "enterprise", "unit": "hour", "unit_price": "6.50"}],
    }
    answer = client.post("/api/v1/resources", json=data, headers=lab["headers"])
    fields = answer.get_json()["error"]["details"]["fields"]
    assert answer.status_code == 422 and {"capacity", "prices.0.unit"} <= set(fields)
    data.update(capacity=64, capacity_unit="gpu")
    data["prices"][0]["unit"] = "gpu_hour"
    created = client.post("/api/v1/resources", json=data, headers=lab["headers"])
    assert created.status_code == 201
    assert (
        created.get_json()["exclusive"] is False
        and created.get_json()["rules"]["granularity_minutes"] == 60
    )


def test_a_pilot_line_books_whole_days_or_shifts(client, lab):
    data = {
        "kind": "pilot_line",
        "name_zh": "煤焦油加氢中试装置",
        "category": "1001",
        "rules": {"granularity_minutes": 600, "min_minutes": 600, "max_minutes": 6000},
    }
    answer = client.post("/api/v1/resources", json=data, headers=lab["headers"])
    assert "rules.granularity_minutes" in answer.get_json()["error"]["details"]["fields"]
    data["rules"] = {"granularity_minutes": 1440, "min_minutes": 1440, "max_minutes": 43200}
    data["prices"] = [{"customer_class": "enterprise", "unit": "day", "unit_price": "28000.00"}]
    assert client.post("/api/v1/resources", json=data, headers=lab["headers"]).status_code == 201


def test_patch_checks_the_merged_rules_and_refuses_a_new_kind(client, lab, sigma, session):
    path = f"/api/v1/resources/{sigma['id']}"
    before = counts(session)
    too_short = client.patch(path, json={"rules": {"max_minutes": 30}}, headers=lab["headers"])
    assert too_short.status_code == 422
    assert "rules.max_minutes" in too_short.get_json()["error"]["details"]["fields"]
    new_kind = client.patch(path, json={"kind": "hpc"}, headers=lab["headers"])
    assert "kind" in new_kind.get_json()["error"]["details"]["fields"]
    assert counts(session) == before
    assert client.get(path).get_json()["rules"]["max_minutes"] == 480


def test_opening_hours_replace_the_week_and_empty_means_around_the_clock(client, lab, sigma):
    path = f"/api/v1/resources/{sigma['id']}"
    week = [{"weekday": 5, "open": "09:00", "close": "24:00"}]
    answer = client.patch(path, json={"opening_hours": week}, headers=lab["headers"])
    assert answer.get_json()["opening_hours"] == week
    answer = client.patch(path, json={"opening_hours": []}, headers=lab["headers"])
    assert answer.get_json()["opening_hours"] == []


def test_retired_resources_are_not_listed_but_kept(client, lab, sigma):
    path = f"/api/v1/resources/{sigma['id']}"
    client.patch(path, json={"status": "retired"}, headers=lab["headers"])
    assert client.get("/api/v1/resources", query_string={"q": "电镜"}).get_json()["total"] == 0
    assert client.get(path).get_json()["status"] == "retired"


def test_retiring_with_live_bookings_is_a_conflict(
    client, lab, sigma, session, make_org, make_user, make_reservation
):
    customer = make_org("enterprise")
    resource = session.get(Resource, sigma["id"])
    make_reservation(resource, customer, make_user(customer), NOW + timedelta(days=3))
    session.commit()
    answer = client.patch(
        f"/api/v1/resources/{sigma['id']}", json={"status": "retired"}, headers=lab["headers"]
    )
    assert answer.status_code == 409
    assert answer.get_json()["error"]["details"]["field"] == "status"


# --- prices ------------------------------------------------------------------------------


def test_a_price_change_closes_the_old_rule_and_starts_a_new_one(client, lab, sigma, session):
    path = f"/api/v1/resources/{sigma['id']}/prices"
    prices = [
        {"customer_class": "internal", "unit": "hour", "unit_price": "200.00"},
        {"customer_class": "academic", "unit": "hour", "unit_price": "320.00"},
        {
            "customer_class": "enterprise",
            "unit": "hour",
            "unit_price": "500.00",
            "setup_fee": "50.00",
            "rounding_minutes": 30,
            "rounding_threshold_minutes": 15,
        },
    ]
    answer = client.put(path, json={"prices": prices}, headers=lab["headers"])
    assert answer.status_code == 200
    rows = session.scalars(select(PriceRule).order_by(PriceRule.id)).all()
    assert len(rows) == 4  # three first versions, one new academic rule
    old_academic = next(r for r in rows[:3] if r.customer_class.value == "academic")
    assert old_academic.effective_until == NOW
    assert rows[3].effective_from == NOW and rows[3].effective_until is None
    current = client.get(path).get_json()["prices"]
    assert {p["customer_class"]: p["unit_price"] for p in current} == {
        "internal": "200.00",
        "academic": "320.00",
        "enterprise": "500.00",
    }
    history = client.get(path + "?history=true", headers=lab["headers"]).get_json()["prices"]
    assert len(history) == 4


def test_an_unchanged_price_list_writes_nothing(client, lab, sigma, session):
    before = counts(session)
    prices = sigma_input()["prices"]
    enterprise = prices[2]
    enterprise.update(rounding_minutes=30, rounding_threshold_minutes=15)
    answer = client.put(
        f"/api/v1/resources/{sigma['id']}/prices", json={"prices": prices}, headers=lab["headers"]
    )
    assert answer.status_code == 200
    after = counts(session)
    assert after["price_rules"] == before["price_rules"]


def test_a_price_list_may_start_later(client, lab, sigma, frozen_clock):
    path = f"/api/v1/resources/{sigma['id']}/prices"
    answer = client.put(
        path,
        json={
            "prices": [{"customer_class": "enterprise", "unit": "hour", "unit_price": "600.00"}],
            "effective_from": "2030-04-01T00:00:00",
        },
        headers=lab["headers"],
    )
    assert answer.status_code == 200
    now = {p["customer_class"]: p["unit_price"] for p in client.get(path).get_json()["prices"]}
    assert now == {"internal": "200.00", "academic": "300.00", "enterprise": "500.00"}
    frozen_clock.move_to(datetime(2030, 4, 1, 1, 0, tzinfo=UTC))
    later = client.get(path).get_json()["prices"]
    assert [(p["customer_class"], p["unit_price"]) for p in later] == [("enterprise", "600.00")]


def test_price_lists_are_checked_like_resources(client, lab, sigma, session):
    before = counts(session)
    path = f"/api/v1/resources/{sigma['id']}/prices"
    answer = client.put(
        path,
        json={
            "prices": [
                {"customer_class": "enterprise", "unit": "core_hour", "unit_price": "1.00"},
                {"customer_class": "academic", "unit": "hour", "unit_price": "-1.00"},
            ],
            "effective_from": "2020-01-01T00:00:00",
        },
        headers=lab["headers"],
    )
    assert answer.status_code == 422
    assert counts(session) == before
    past = client.put(
        path,
        json={
            "prices": [{"customer_class": "enterprise", "unit": "hour", "unit_price": "1.00"}],
            "effective_from": "2020-01-01T00:00:00",
        },
        headers=lab["headers"],
    )
    assert past.get_json()["error"]["details"]["fields"] == {"effective_from": ["该时间已经过去。"]}


def test_prices_through_patch_are_versioned_too(client, lab, sigma, session):
    answer = client.patch(
        f"/api/v1/resources/{sigma['id']}",
        json={"prices": [{"customer_class": "enterprise", "unit": "hour", "unit_price": "450.00"}]},
        headers=lab["headers"],
    )
    assert [p["unit_price"] for p in answer.get_json()["prices"]] == ["450.00"]
    assert session.scalar(select(func.count()).select_from(PriceRule)) == 4


# --- blackouts -----------------------------------------------------------------------------


def test_blackouts_are_added_listed_and_removed(client, lab, sigma, session):
    path = f"/api/v1/resources/{sigma['id']}/blackouts"
    answer = client.post(
        path,
        json={
            "start": "2030-03-05T08:00",
            "end": "2030-03-05T12:00+08:00",
            "reason": "年度校准",
            "kind": "calibration",
        },
        headers=lab["headers"],
    )
    assert answer.status_code == 201
    body = answer.get_json()
    assert (
        body["start"] == "2030-03-05T08:00:00+08:00" and body["end"] == "2030-03-05T12:00:00+08:00"
    )
    assert body["kind"] == "calibration" and body["overlapping_reservations"] == []
    stored = session.get(Blackout, body["id"])
    assert stored.start_at == datetime(2030, 3, 5, 0, 0, tzinfo=UTC)
    listed = client.get(path).get_json()["items"]
    assert [b["id"] for b in listed] == [body["id"]]
    assert client.delete(f"{path}/{body['id']}", headers=lab["headers"]).status_code == 204
    assert client.get(path).get_json()["items"] == []
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-2:] == ["resource.blackout_add", "resource.blackout_delete"]


def test_a_blackout_names_the_bookings_inside_it(
    client, lab, sigma, session, make_org, make_user, make_reservation
):
    customer = make_org("enterprise")
    booking = make_reservation(
        session.get(Resource, sigma["id"]),
        customer,
        make_user(customer),
        datetime(2030, 3, 5, 1, 0, tzinfo=UTC),
    )
    session.commit()
    answer = client.post(
        f"/api/v1/resources/{sigma['id']}/blackouts",
        json={
            "start": "2030-03-05T08:00",
            "end": "2030-03-05T18:00",
            "reason": "故障",
            "kind": "breakdown",
        },
        headers=lab["headers"],
    )
    assert answer.get_json()["overlapping_reservations"] == [booking.id]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start": "2030-03-05T12:00", "end": "2030-03-05T08:00", "reason": "x"}, "end"),
        ({"start": "2030-03-05T08:00", "end": "2030-03-05T12:00", "reason": ""}, "reason"),
        ({"start": "soon", "end": "2030-03-05T12:00", "reason": "x"}, "start"),
        (
            {
                "start": "2030-03-05T08:00",
                "end": "2030-03-05T12:00",
                "reason": "x",
                "kind": "party",
            },
            "kind",
        ),
        ({"start": "2030-03-05T08:00", "end": "2032-03-05T12:00", "reason": "x"}, "end"),
    ],
)
def test_bad_blackouts_are_refused(client, lab, sigma, session, body, field):
    before = counts(session)
    answer = client.post(
        f"/api/v1/resources/{sigma['id']}/blackouts", json=body, headers=lab["headers"]
    )
    assert answer.status_code == 422
    assert field in answer.get_json()["error"]["details"]["fields"]
    assert counts(session) == before


# --- photos ----------------------------------------------------------------------------------


def image_bytes(fmt="PNG", size=(640, 480), mode="RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (120, 30, 200) if mode == "RGB" else 128).save(out, fmt)
    return out.getvalue()


def upload(client, sigma, headers, content, name="photo.png", caption="正面"):
    return client.post(
        f"/api/v1/resources/{sigma['id']}/photos",
        data={"file": (io.BytesIO(content), name), "caption": caption},
        headers=headers,
        content_type="multipart/form-data",
    )


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_photo_is_stored_with_a_thumbnail_and_served(client, lab, sigma, fmt):
    answer = upload(client, sigma, lab["headers"], image_bytes(fmt))
    assert answer.status_code == 201, answer.get_json()
    photo = answer.get_json()
    assert photo["width"] == 640 and photo["height"] == 480 and photo["caption"] == "正面"
    full = client.get(photo["url"])
    assert full.status_code == 200 and full.headers["Content-Type"] == photo["content_type"]
    assert Image.open(io.BytesIO(full.data)).format == fmt
    thumb = client.get(photo["thumbnail_url"])
    assert Image.open(io.BytesIO(thumb.data)).size[0] <= 480
    assert (
        client.get(
            photo["thumbnail_url"], headers={"If-None-Match": thumb.headers["ETag"]}
        ).status_code
        == 304
    )
    resource = client.get(f"/api/v1/resources/{sigma['id']}").get_json()
    assert resource["photos"][0]["id"] == photo["id"]


@pytest.mark.parametrize(
    "content",
    [
        b"%PDF-1.4 definitely not a picture",
        b"",
        image_bytes("GIF"),
        image_bytes("PNG", size=(8, 8)),
        image_bytes("PNG")[:200],
    ],
    ids=["pdf", "empty", "gif", "tiny", "truncated"],
)
def test_what_is_not_a_photo_is_refused(client, lab, sigma, session, content):
    before = counts(session)
    answer = upload(client, sigma, lab["headers"], content, name="x.png")
    assert answer.status_code == 422
    assert "file" in answer.get_json()["error"]["details"]["fields"]
    assert counts(session) == before


def test_a_photo_too_large_is_refused(client, app, lab, sigma, session):
    before = counts(session)
    limit = app.config["PHOTO_MAX_BYTES"]
    app.config["PHOTO_MAX_BYTES"] = 10_000
    try:
        noisy = Image.effect_noise((400, 400), 80).convert("RGB")
        out = io.BytesIO()
        noisy.save(out, "PNG")
        answer = upload(client, sigma, lab["headers"], out.getvalue())
    finally:
        app.config["PHOTO_MAX_BYTES"] = limit
    assert answer.status_code == 422
    assert answer.get_json()["error"]["details"]["fields"] == {"file": ["照片文件过大。"]}
    assert counts(session) == before


def test_only_the_owner_uploads_and_deletes_photos(client, lab, other_lab, sigma):
    assert upload(client, sigma, other_lab["headers"], image_bytes()).status_code == 404
    photo = upload(client, sigma, lab["headers"], image_bytes()).get_json()
    path = f"/api/v1/resources/{sigma['id']}/photos/{photo['id']}"
    assert client.delete(path, headers=other_lab["headers"]).status_code == 404
    assert client.delete(path, headers=lab["headers"]).status_code == 204
    assert client.get(photo["url"]).status_code == 404


# --- bulk import -------------------------------------------------------------------------------

GOOD_CSV = "\n".join(
    [
        "中文名称,类型,分类代码,生产厂商,型号,资产编号,开放时间,计价单位,企业价,高校院所价,需要培训",
        "场发射扫描电子显微镜,instrument,0101,ZEISS,Sigma 300,A-001,"
        '"1-5 08:30-12:00,14:00-17:30",hour,500.00,300.00,是',
        "X射线衍射仪,仪器,0106,Rigaku,SmartLab,A-002,,hour,300,200,否",
        "",
    ]
)

BAD_CSV = "\n".join(
    [
        "name_zh,kind,category,capacity,opening_hours,price_unit,price_enterprise,"
        "min_minutes,max_minutes",
        "好的一行,instrument,0101,1,1-5 08:00-12:00,hour,100,,",
        "坏的一行,instrument,9999,0,1-5 12:00-08:00,sample,-5,120,60",
        ",instrument,0101,,,,,,",
        "",
    ]
)


def import_file(client, headers, content: bytes, name="list.csv", **form):
    return client.post(
        "/api/v1/resources/import",
        data={"file": (io.BytesIO(content), name), **form},
        headers=headers,
        content_type="multipart/form-data",
    )


def test_a_good_csv_is_imported_whole(client, lab, session):
    answer = import_file(client, lab["headers"], GOOD_CSV.encode("utf-8-sig"))
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["created"] == 2 and [i["row"] for i in body["items"]] == [2, 3]
    sem = client.get(f"/api/v1/resources/{body['items'][0]['id']}").get_json()
    assert sem["rules"]["requires_training"] is True and len(sem["opening_hours"]) == 10
    assert {p["customer_class"] for p in sem["prices"]} == {"enterprise", "academic"}
    assert client.get("/api/v1/resources", query_string={"q": "电镜"}).get_json()["total"] == 1


def test_gb18030_csv_from_a_chinese_spreadsheet_program(client, lab):
    answer = import_file(client, lab["headers"], GOOD_CSV.encode("gb18030"))
    assert answer.status_code == 201 and answer.get_json()["created"] == 2


def test_bad_rows_are_reported_by_row_and_column_and_nothing_is_imported(client, lab, session):
    before = counts(session)
    answer = import_file(client, lab["headers"], BAD_CSV.encode())
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    cells = {(r["row"], r["column"]) for r in error["details"]["rows"]}
    assert {
        (3, "category"),
        (3, "capacity"),
        (3, "opening_hours"),
        (3, "price_enterprise"),
        (3, "max_minutes"),
        (4, "name_zh"),
    } <= cells, cells
    assert not any(row == 2 for row, _ in cells)
    assert "3.category" in error["details"]["fields"]
    assert all(r["messages"] for r in error["details"]["rows"])
    assert counts(session) == before


def test_an_unknown_column_and_a_missing_one(client, lab, session):
    answer = import_file(client, lab["headers"], "name_zh,colour\n显微镜,red\n".encode())
    cells = {(r["row"], r["column"]) for r in answer.get_json()["error"]["details"]["rows"]}
    assert {(1, "colour"), (1, "kind"), (1, "category")} <= cells


def test_a_duplicate_asset_number_is_refused(client, lab, session):
    import_file(client, lab["headers"], GOOD_CSV.encode())
    again = import_file(client, lab["headers"], GOOD_CSV.encode())
    cells = {(r["row"], r["column"]) for r in again.get_json()["error"]["details"]["rows"]}
    assert cells == {(2, "inner_id"), (3, "inner_id")}


def test_xlsx_and_a_dry_run(client, lab, session):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(
        [
            "name_zh",
            "kind",
            "category",
            "capacity",
            "original_value",
            "accepted_on",
            "price_unit",
            "price_enterprise",
        ]
    )
    sheet.append(
        ["同步热分析仪", "instrument", "0107", 1, 1250000.5, datetime(2020, 5, 6), "hour", 260]
    )
    out = io.BytesIO()
    book.save(out)
    before = counts(session)
    dry = import_file(client, lab["headers"], out.getvalue(), name="list.xlsx", dry_run="true")
    assert dry.status_code == 200 and dry.get_json() == {
        "dry_run": True,
        "created": 0,
        "items": [{"row": 2, "id": None, "name_zh": "同步热分析仪"}],
    }
    assert counts(session) == before
    real = import_file(client, lab["headers"], out.getvalue(), name="list.xlsx")
    resource = client.get(f"/api/v1/resources/{real.get_json()['items'][0]['id']}").get_json()
    assert resource["original_value"] == "1250000.50"


def test_only_a_lab_admin_imports(client, customer_headers, lab):
    assert import_file(client, customer_headers, GOOD_CSV.encode()).status_code == 403
    assert import_file(client, lab["member_headers"], GOOD_CSV.encode()).status_code == 403


def test_the_template_lists_every_column(client):
    answer = client.get("/api/v1/resources/import/template.csv")
    assert answer.status_code == 200 and answer.data.startswith("\ufeffkind,name_zh".encode())


# --- the platform's calendar -------------------------------------------------------------------

YEAR_2027 = {
    "days": [
        {"date": "2027-01-01", "kind": "holiday", "name": "元旦"},
        {"date": "2027-02-06", "kind": "workday", "name": "春节调休"},
        {"date": "2027-02-07", "kind": "workday", "name": "春节调休"},
    ]
}


def test_a_platform_admin_enters_a_year_the_library_does_not_know(
    client, session, platform_admin, auth_headers
):
    headers = auth_headers(platform_admin)
    assert client.get("/api/v1/calendar/2027").get_json() == {
        "year": 2027,
        "library_knows": False,
        "days": [],
    }
    answer = client.put("/api/v1/calendar/2027", json=YEAR_2027, headers=headers)
    assert answer.status_code == 200
    days = answer.get_json()["days"]
    assert [(d["date"], d["kind"], d["source"]) for d in days] == [
        ("2027-01-01", "holiday", "platform"),
        ("2027-02-06", "workday", "platform"),
        ("2027-02-07", "workday", "platform"),
    ]
    assert session.scalar(select(func.count()).select_from(CalendarDay)) == 3
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "calendar.set_year")
    ).one()
    assert event.actor_user_id == platform_admin.id and len(event.after["days"]) == 3
    smaller = client.put(
        "/api/v1/calendar/2027", json={"days": YEAR_2027["days"][:1]}, headers=headers
    )
    assert len(smaller.get_json()["days"]) == 1


def test_entries_win_over_the_library(client, platform_admin, auth_headers):
    known = client.get("/api/v1/calendar/2026").get_json()
    assert known["library_knows"] is True
    national_day = next(d for d in known["days"] if d["date"] == "2026-10-01")
    assert national_day == {
        "date": "2026-10-01",
        "kind": "holiday",
        "name": "国庆节",
        "source": "library",
    }
    assert any(d["kind"] == "workday" for d in known["days"])
    client.put(
        "/api/v1/calendar/2026",
        json={"days": [{"date": "2026-10-08", "kind": "holiday", "name": "补假"}]},
        headers=auth_headers(platform_admin),
    )
    days = {d["date"]: d for d in client.get("/api/v1/calendar/2026").get_json()["days"]}
    assert days["2026-10-08"]["source"] == "platform" and days["2026-10-01"]["source"] == "library"


def test_an_adjusted_working_day_on_a_weekday_is_refused(
    client, session, platform_admin, auth_headers
):
    bad = {
        "days": [
            {"date": "2027-02-09", "kind": "workday"},
            {"date": "2028-01-01", "kind": "holiday"},
        ]
    }
    answer = client.put("/api/v1/calendar/2027", json=bad, headers=auth_headers(platform_admin))
    assert answer.status_code == 422
    assert set(answer.get_json()["error"]["details"]["fields"]) == {"days.0.kind", "days.1.date"}
    assert session.scalar(select(func.count()).select_from(CalendarDay)) == 0


def test_only_the_platform_admin_keeps_the_calendar(client, lab, customer_headers):
    for headers in (lab["headers"], customer_headers):
        assert (
            client.put("/api/v1/calendar/2027", json=YEAR_2027, headers=headers).status_code == 403
        )
    assert client.put("/api/v1/calendar/2027", json=YEAR_2027).status_code == 401


def test_the_openapi_document_describes_the_catalog(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in (
        "/api/v1/resources",
        "/api/v1/resources/{resource_id}",
        "/api/v1/resources/{resource_id}/prices",
        "/api/v1/resources/{resource_id}/blackouts",
        "/api/v1/resources/{resource_id}/photos",
        "/api/v1/resources/import",
        "/api/v1/categories",
        "/api/v1/calendar/{year}",
    ):
        assert path in paths, path
    assert {"get", "post"} <= set(paths["/api/v1/resources"])
    assert {"get", "patch"} <= set(paths["/api/v1/resources/{resource_id}"])
    assert {"get", "put"} <= set(paths["/api/v1/resources/{resource_id}/prices"])


def test_a_listed_resource_is_the_same_json_as_the_resource_itself(client, lab, sigma):
    """Lists are built without marshmallow (speed): they must not drift."""
    upload(client, sigma, lab["headers"], image_bytes())
    client.patch(
        f"/api/v1/resources/{sigma['id']}",
        json={"accepted_on": "2019-06-18", "turnaround_days": 3, "country": "DEU"},
        headers=lab["headers"],
    )
    one = client.get(f"/api/v1/resources/{sigma['id']}").get_json()
    listed = client.get("/api/v1/resources", query_string={"q": "sigma"}).get_json()["items"][0]
    assert listed == one
    assert listed["photos"] and listed["accepted_on"] == "2019-06-18"

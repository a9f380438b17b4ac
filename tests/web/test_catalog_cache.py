"""The catalog's resources kept between requests (booking.services.catalog_cache)
are never served stale: every change of what a resource's answer shows is
seen by the next search and the next read, whoever wrote it (the API, a
service, plain SQL), and prices that begin or end later change the answer
when their time comes, with no write at all."""

from __future__ import annotations

import http.client
import io
import json
import threading
from datetime import UTC, datetime

import pytest
import time_machine
from PIL import Image
from sqlalchemy import event, select, text

from booking.extensions import db as _db
from booking.models.catalog import Category, Resource
from booking.models.catalog_revision import CatalogRevision
from tests.factories.catalog import sigma_input

NOW = datetime(2030, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 Beijing time, a Friday


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def read(client, resource_id: int) -> dict:
    answer = client.get(f"/api/v1/resources/{resource_id}")
    assert answer.status_code == 200
    return answer.get_json()


def found(client, resource_id: int, **query) -> dict:
    answer = client.get("/api/v1/resources", query_string={"per_page": 50, **query})
    assert answer.status_code == 200
    return next(item for item in answer.get_json()["items"] if item["id"] == resource_id)


def enterprise_price(resource: dict) -> str:
    return next(p["unit_price"] for p in resource["prices"] if p["customer_class"] == "enterprise")


def test_a_kept_resource_is_read_with_one_statement(client, sigma, app):
    read(client, sigma["id"])  # kept
    statements = []

    def note(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = _db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        again = read(client, sigma["id"])
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert again == sigma
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 1 and "catalog_revision" in reads[0]


def test_changes_through_the_api_are_seen_at_once(client, lab, sigma):
    path = f"/api/v1/resources/{sigma['id']}"
    assert found(client, sigma["id"], q="电镜")["name_en"] == sigma["name_en"]
    read(client, sigma["id"])

    assert client.patch(path, json={"name_en": "FE-SEM"}, headers=lab["headers"]).status_code == 200
    assert read(client, sigma["id"])["name_en"] == "FE-SEM"
    assert found(client, sigma["id"], q="电镜")["name_en"] == "FE-SEM"

    week = [{"weekday": 5, "open": "09:00", "close": "12:00"}]
    answer = client.patch(path, json={"opening_hours": week}, headers=lab["headers"])
    assert answer.status_code == 200
    assert read(client, sigma["id"])["opening_hours"] == week

    prices = [{"customer_class": "enterprise", "unit": "hour", "unit_price": "640.00"}]
    answer = client.put(path + "/prices", json={"prices": prices}, headers=lab["headers"])
    assert answer.status_code == 200
    assert enterprise_price(read(client, sigma["id"])) == "640.00"
    assert enterprise_price(found(client, sigma["id"])) == "640.00"

    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 30, 200)).save(picture, "PNG")
    answer = client.post(
        path + "/photos",
        data={"file": (io.BytesIO(picture.getvalue()), "p.png"), "caption": "正面"},
        headers=lab["headers"],
        content_type="multipart/form-data",
    )
    assert answer.status_code == 201
    photo = answer.get_json()
    assert [p["id"] for p in read(client, sigma["id"])["photos"]] == [photo["id"]]
    assert client.delete(f"{path}/photos/{photo['id']}", headers=lab["headers"]).status_code == 204
    assert read(client, sigma["id"])["photos"] == []

    assert client.patch(path, json={"status": "retired"}, headers=lab["headers"]).status_code == 200
    assert read(client, sigma["id"])["status"] == "retired"
    assert client.get("/api/v1/resources", query_string={"q": "电镜"}).get_json()["total"] == 0


def test_a_lab_renamed_or_a_category_renamed_by_a_service_is_seen(client, lab, sigma, session):
    read(client, sigma["id"])
    lab["provider"].name = "山西大学测试中心"
    session.commit()
    assert read(client, sigma["id"])["provider_name"] == "山西大学测试中心"

    category = session.scalar(select(Category).where(Category.code == sigma["category"]))
    category.name_en = "Electron microscopes"
    session.commit()
    assert found(client, sigma["id"])["category_name_en"] == "Electron microscopes"


def test_a_change_in_plain_sql_is_seen(client, sigma, session):
    read(client, sigma["id"])
    session.execute(
        text("UPDATE resources SET location = :where WHERE id = :id"),
        {"where": "理科楼 B201", "id": sigma["id"]},
    )
    session.commit()
    assert read(client, sigma["id"])["location"] == "理科楼 B201"
    session.execute(
        text("UPDATE price_rules SET unit_price = 512 WHERE resource_id = :id"), {"id": sigma["id"]}
    )
    session.commit()
    assert enterprise_price(found(client, sigma["id"])) == "512.00"


def test_a_change_rolled_back_leaves_the_answer_as_it_was(client, sigma, session):
    before = read(client, sigma["id"])
    resource = session.get(Resource, sigma["id"])
    resource.name_en = "never"
    session.flush()
    session.rollback()
    assert read(client, sigma["id"]) == before


def test_prices_that_begin_later_are_shown_when_their_time_comes(client, lab, sigma, frozen_clock):
    path = f"/api/v1/resources/{sigma['id']}"
    answer = client.put(
        path + "/prices",
        json={
            "prices": [{"customer_class": "enterprise", "unit": "hour", "unit_price": "600.00"}],
            "effective_from": "2030-04-01T00:00:00",
        },
        headers=lab["headers"],
    )
    assert answer.status_code == 200
    assert enterprise_price(read(client, sigma["id"])) == "500.00"
    assert enterprise_price(found(client, sigma["id"])) == "500.00"
    frozen_clock.move_to(datetime(2030, 3, 31, 15, 59, tzinfo=UTC))  # 23:59 the day before
    assert enterprise_price(read(client, sigma["id"])) == "500.00"
    frozen_clock.move_to(datetime(2030, 3, 31, 16, 0, tzinfo=UTC))  # midnight in Shanxi
    assert enterprise_price(read(client, sigma["id"])) == "600.00"
    assert enterprise_price(found(client, sigma["id"])) == "600.00"
    with time_machine.travel(datetime(2030, 3, 20, tzinfo=UTC), tick=False):
        assert enterprise_price(read(client, sigma["id"])) == "500.00"  # the clock set back


def test_only_changes_of_what_answers_show_give_a_new_revision(client, lab, sigma, session):
    def revision() -> int:
        session.expire_all()
        return session.scalar(select(CatalogRevision.revision))

    first = revision()
    lab["provider"].voucher_provider = not lab["provider"].voucher_provider  # not its name
    session.commit()
    assert revision() == first
    path = f"/api/v1/resources/{sigma['id']}"
    assert client.patch(path, json={"name_en": "SEM"}, headers=lab["headers"]).status_code == 200
    assert revision() != first


# --- racing -------------------------------------------------------------------------


def call(port: int, method: str, path: str, body=None, headers=None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(
            method,
            path,
            body=None if body is None else json.dumps(body),
            headers={**(headers or {}), "Content-Type": "application/json"},
        )
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")
    finally:
        connection.close()


def test_racing_changes_and_reads_leave_every_answer_current(live_server, client, lab, session):
    """Eight admins' changes to four resources race with readers filling the
    cache: no change is refused or lost (no deadlock on the revision row),
    and afterwards every read and search shows each resource's last name."""
    ids = []
    for n in range(4):
        data = sigma_input(name_zh=f"扫描电镜 {n}", name_en=f"SEM {n}", inner_id=f"race-{n}")
        answer = client.post("/api/v1/resources", json=data, headers=lab["headers"])
        assert answer.status_code == 201, answer.get_json()
        ids.append(answer.get_json()["id"])
    barrier = threading.Barrier(16)
    statuses: list[int] = []

    def change(index: int) -> None:
        resource_id = ids[index % 4]
        barrier.wait()
        for round_ in range(3):
            status, _ = call(
                live_server,
                "PATCH",
                f"/api/v1/resources/{resource_id}",
                {"name_en": f"SEM {index % 4} v{index // 4}.{round_}"},
                lab["headers"],
            )
            statuses.append(status)

    def read_all() -> None:
        barrier.wait()
        for _ in range(10):
            for resource_id in ids:
                statuses.append(call(live_server, "GET", f"/api/v1/resources/{resource_id}")[0])
            statuses.append(call(live_server, "GET", "/api/v1/resources?q=sem&per_page=50")[0])

    threads = [threading.Thread(target=change, args=(i,)) for i in range(8)]
    threads += [threading.Thread(target=read_all) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses and set(statuses) == {200}
    session.expire_all()
    names = dict(session.execute(select(Resource.id, Resource.name_en)).all())
    session.rollback()  # no read transaction left open (SQLite's lock)
    for resource_id in ids:
        assert (
            call(live_server, "GET", f"/api/v1/resources/{resource_id}")[1]["name_en"]
            == (names[resource_id])
        )
    _status, page = call(live_server, "GET", "/api/v1/resources?q=sem&per_page=50")
    assert {item["id"]: item["name_en"] for item in page["items"]} == {i: names[i] for i in ids}

"""The API's arguments schemas are made once and serve every request: one
request's arguments, errors or language never reach the next."""

from __future__ import annotations

import flask_smorest

from booking.web.api.blueprint import Blueprint, SchemaReusingParser


def test_every_api_blueprint_reuses_its_arguments_schemas(app):
    blueprints = [bp for bp in app.blueprints.values() if isinstance(bp, flask_smorest.Blueprint)]
    assert len(blueprints) >= 8
    for bp in blueprints:
        assert isinstance(bp, Blueprint), bp.name
        assert isinstance(bp.ARGUMENTS_PARSER, SchemaReusingParser)


def test_one_requests_arguments_do_not_reach_the_next(client):
    bad = client.get("/api/v1/resources", query_string={"kind": "spaceship", "per_page": 0})
    assert bad.status_code == 422
    assert set(bad.get_json()["error"]["details"]["fields"]) == {"kind", "per_page"}
    good = client.get("/api/v1/resources", query_string={"per_page": 3})
    assert good.status_code == 200
    assert good.get_json()["per_page"] == 3
    default = client.get("/api/v1/resources")
    assert default.status_code == 200 and default.get_json()["per_page"] != 3


def test_errors_follow_each_requests_language(client):
    args = {"kind": "spaceship"}
    chinese = client.get("/api/v1/resources", query_string=args)
    english = client.get("/api/v1/resources", query_string=args, headers={"Accept-Language": "en"})
    chinese_again = client.get("/api/v1/resources", query_string=args)
    zh = chinese.get_json()["error"]["details"]["fields"]["kind"]
    en = english.get_json()["error"]["details"]["fields"]["kind"]
    assert zh != en
    assert chinese_again.get_json()["error"]["details"]["fields"]["kind"] == zh

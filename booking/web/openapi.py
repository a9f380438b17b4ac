"""The flask-smorest ``Api`` of the platform: OpenAPI at /api/v1/openapi.json,
generated from the marshmallow schemas, with API.md's error shape."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Api


class ErrorBodySchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "stable English word"})
    message = ma.fields.String(required=True, metadata={"description": "in the caller's language"})
    details = ma.fields.Dict(metadata={"description": "fields, rules, conflicts"})


class ErrorSchema(ma.Schema):
    error = ma.fields.Nested(ErrorBodySchema, required=True)


class PlatformApi(Api):
    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        # Errors are answered by booking.web.errors for the whole app.
        pass

    def init_app(self, app, *, spec_kwargs=None):
        spec_kwargs = dict(spec_kwargs or {})
        super().init_app(app, spec_kwargs=spec_kwargs)
        self.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
        self.spec.options["security"] = [{"bearerAuth": []}, {}]

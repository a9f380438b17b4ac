"""The API's blueprint class: flask-smorest's, with an arguments parser that
makes each arguments schema once instead of on every request.

webargs instantiates a schema given as a class for every request it parses;
a marshmallow schema copies its declared fields when it is made (a deep copy
of every field), a tenth of a catalog search's CPU. Our arguments schemas
keep no state between loads (``load`` takes ``unknown`` as an argument), so
one instance per class serves every request and thread.
"""

from __future__ import annotations

import flask_smorest
import marshmallow as ma
from webargs.flaskparser import FlaskParser


class SchemaReusingParser(FlaskParser):
    """webargs' Flask parser; a schema class is instantiated once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._schemas: dict[type[ma.Schema], ma.Schema] = {}

    def _get_schema(self, argmap, req) -> ma.Schema:
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            schema = self._schemas.get(argmap)
            if schema is None:
                schema = self._schemas[argmap] = argmap()
            return schema
        return super()._get_schema(argmap, req)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = SchemaReusingParser()

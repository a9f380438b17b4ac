"""marshmallow schemas at the API's edges, one module per area."""

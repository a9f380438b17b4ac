"""The HTTP layer: thin blueprints that parse, call a service, and render or
jsonify. ``api/`` serves /api/v1, ``pages/`` the HTML pages, ``feeds`` the
.ics feeds; errors are turned into responses in ``errors``."""

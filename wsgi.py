"""The WSGI entry point: ``gunicorn wsgi:app`` and ``flask --app wsgi``."""

from booking import create_app
from booking.process_settings import tune_garbage_collector

app = create_app()

# The app's long-lived objects frozen out of the collector's sight, and a
# larger youngest generation: see ``tune_garbage_collector``.
tune_garbage_collector()

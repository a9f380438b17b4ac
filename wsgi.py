"""The WSGI entry point: ``gunicorn wsgi:app`` and ``flask --app wsgi``."""

import gc

from booking import create_app

app = create_app()

# What the app holds for the life of the process (modules, mappers, compiled
# templates, the catalogues) leaves the garbage collector's sight: otherwise
# every full collection that a request's garbage sets off walks all of it
# again, which was a third of the CPU of a large availability answer.
gc.collect()
gc.freeze()

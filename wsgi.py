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

# A large answer holds some ten thousand small containers at once (an
# availability answer's rows and intervals): at the default threshold of 700
# new containers the youngest generation was collected ~10 times in each,
# walking them over and over (1.4 ms of a 14 ms answer), and every tenth
# answer paid a full collection. Garbage in cycles waits a little longer.
gc.set_threshold(10_000, 10, 10)

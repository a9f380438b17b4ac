"""Settings that some modules keep per process rather than per app: the
platform's time zone (``booking.domain.clock``), the feeds' base URL and
window (``booking.services.feeds``), the waiting list's offer time
(``booking.services.waitlist``). The domain and services read them without
a Flask import.

One process may hold several apps (the tests, tools that open a second
database): ``keep`` applies an app's settings at once and again whenever
that app's context is pushed, so code always runs with the settings of the
app it runs under, not those of the app created last."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, appcontext_pushed


def keep(app: Flask, apply: Callable[[], None]) -> None:
    apply()

    def reapply(_sender, **_extra) -> None:
        apply()

    # blinker holds receivers weakly: the app keeps them alive.
    app.extensions.setdefault("process_settings", []).append(reapply)
    appcontext_pushed.connect(reapply, app)


def tune_garbage_collector() -> None:
    """The collector's settings of a serving process, once its app is made
    (``wsgi.py``; the benchmarks that time reports in process call it too).

    What the app holds for the life of the process (modules, mappers,
    compiled templates, the catalogues) leaves the collector's sight:
    otherwise every full collection that a request's garbage sets off walks
    all of it again, which was a third of the CPU of a large availability
    answer.

    A large answer holds some ten thousand small containers at once (an
    availability answer's rows and intervals, a report's lines, an XLSX
    writer's cells): at the default threshold of 700 new containers the
    youngest generation was collected ~10 times in each, walking them over
    and over (1.4 ms of a 14 ms answer), and every tenth answer paid a full
    collection. Garbage in cycles waits a little longer."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)

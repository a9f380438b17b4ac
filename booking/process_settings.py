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

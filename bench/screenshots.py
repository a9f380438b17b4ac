"""Screenshots of every page at desktop (1280×800) and phone (390×844)
widths, written to ``screenshots/`` (gitignored), so anyone can look at them:

    bin/screenshots                                       # the same, all pages
    .venv/bin/python bench/screenshots.py                 # all pages
    .venv/bin/python bench/screenshots.py --only lab      # names containing "lab"
    .venv/bin/python bench/screenshots.py --out /tmp/shots

It builds the demo data set in a temporary SQLite file, plays a short story
through the services (an SME books instruments with its voucher, the lab
approves, runs and completes them, files a redemption claim for November),
serves the app on 127.0.0.1 with the clock fixed at Tuesday 1 December 2026,
09:00 Beijing time, and signs in as each role in Debian's chromium (driven by
Playwright: the test extras and ``apt-get install chromium``). Each page is
taken whole (full page) in Chinese; a few in English too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=SH)
CHROMIUM = "/usr/bin/chromium"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}

ACCOUNTS = {
    "customer": ("customer@demo.jcg.cn", "demo-customer-2026"),
    "lab": ("lab@demo.jcg.cn", "demo-lab-2026"),
    "bureau": ("bureau@demo.jcg.cn", "demo-bureau-2026"),
    "admin": ("admin@demo.jcg.cn", "demo-admin-2026"),
}


def build_story(app, traveller) -> dict:
    """The demo data and a November of bookings, a claim, and today's work."""
    from sqlalchemy import select

    from booking.extensions import db
    from booking.models.catalog import Resource
    from booking.models.vouchers import Voucher
    from booking.services import accounts, claims, demo, reservations, training

    def at(*args):
        traveller.move_to(datetime(*args, tzinfo=SH))

    with app.app_context():
        session = db.session
        at(2026, 11, 2, 8, 0)
        demo.seed(session)
        session.commit()

        def actor(email):
            return accounts.actor_for(accounts.find_user_by_email(session, email), "127.0.0.1")

        def resource(name_en_start):
            return session.scalar(
                select(Resource).where(Resource.name_en.startswith(name_en_start))
            )

        customer, lab = actor(ACCOUNTS["customer"][0]), actor(ACCOUNTS["lab"][0])
        customer_org = next(iter(customer.customer_orgs()))
        voucher = session.scalar(select(Voucher).where(Voucher.holder_org_id == customer_org))
        sem = resource("Field-emission scanning")
        nmr = resource("600 MHz")
        for item in (sem, nmr):
            training.grant_training(
                session, lab, {"email": ACCOUNTS["customer"][0], "resource_id": item.id}
            )
        session.commit()

        def book(item, start, end, with_voucher=True, purpose="材料形貌与成分分析"):
            made = reservations.create_reservation(
                session,
                customer,
                {
                    "resource_id": item.id,
                    "start": start,
                    "end": end,
                    "purpose": purpose,
                    "voucher_id": voucher.id if with_voucher else None,
                },
            )
            session.commit()
            return made

        done = []
        for day in (4, 11, 18):
            made = book(
                sem,
                datetime(2026, 11, day, 9, 0, tzinfo=SH),
                datetime(2026, 11, day, 11, 0, tzinfo=SH),
            )
            reservations.approve(session, lab, made.id)
            session.commit()
            done.append(made.id)
        for number, reservation_id in enumerate(done):
            day = (4, 11, 18)[number]
            at(2026, 11, day, 8, 55)
            reservations.check_in(session, lab, reservation_id)
            at(2026, 11, day, 10, 40)
            reservations.check_out(session, lab, reservation_id)
            reservations.complete(
                session,
                lab,
                reservation_id,
                {"service_way": "guided", "prep_minutes": 15, "post_minutes": 10},
            )
            session.commit()
            claims.confirm_order(session, customer, reservation_id, "customer")
            claims.confirm_order(session, lab, reservation_id, "provider")
            session.commit()

        at(2026, 11, 25, 10, 0)
        rated = done[0]
        reservations.rate(session, customer, rated, 5, "操作规范，数据质量很好。")
        from datetime import date

        claim = claims.create_claim(
            session,
            lab,
            {
                "period_from": date(2026, 11, 1),
                "period_to": date(2026, 11, 14),
                "lines": [
                    {
                        "reservation_id": rid,
                        "invoice_number": f"No.140{rid:05d}",
                        "payment_proof": "对公转账回单 2026-11",
                        "usage_record": "上机记录表",
                    }
                    for rid in done[:2]
                ],
            },
        )
        session.commit()
        claims.submit_claim(session, lab, claim.id)
        session.commit()
        draft = claims.create_claim(
            session, lab, {"period_from": date(2026, 11, 15), "period_to": date(2026, 11, 30)}
        )
        session.commit()

        at(2026, 11, 30, 9, 0)
        today = book(
            nmr,
            datetime(2026, 12, 1, 10, 0, tzinfo=SH),
            datetime(2026, 12, 1, 12, 0, tzinfo=SH),
            with_voucher=False,
            purpose="有机化合物结构鉴定",
        )
        reservations.approve(session, lab, today.id)
        session.commit()
        upcoming = book(
            sem, datetime(2026, 12, 3, 14, 0, tzinfo=SH), datetime(2026, 12, 3, 16, 0, tzinfo=SH)
        )
        book(nmr, datetime(2026, 12, 4, 9, 0, tzinfo=SH), datetime(2026, 12, 4, 10, 0, tzinfo=SH))
        at(2026, 12, 1, 9, 0)
        return {
            "sem": sem.id,
            "voucher": voucher.id,
            "completed": done[0],
            "today": today.id,
            "upcoming": upcoming.id,
            "claim": claim.id,
            "draft": draft.id,
        }


def pages(ids: dict) -> list[tuple[str, str, str]]:
    """(role, name, path) of every page to take; role "anon" is signed out."""
    sem, book = ids["sem"], f"/catalog/resources/{ids['sem']}/book"
    return [
        ("anon", "home", "/"),
        ("anon", "catalog", "/catalog"),
        ("anon", "catalog-search", "/catalog?q=%E7%94%B5%E9%95%9C"),
        ("anon", "resource", f"/catalog/resources/{sem}"),
        ("anon", "login", "/login"),
        ("anon", "signup", "/signup"),
        ("anon", "password-forgot", "/password/forgot"),
        ("customer", "booking-form", f"{book}?start=2026-12-08T09:00&end=2026-12-08T11:00"),
        ("customer", "booking-form-empty", book),
        ("customer", "my-bookings", "/bookings"),
        ("customer", "my-bookings-past", "/bookings?when=past"),
        ("customer", "booking-upcoming", f"/bookings/{ids['upcoming']}"),
        ("customer", "booking-completed", f"/bookings/{ids['completed']}"),
        ("customer", "booking-reschedule", f"/bookings/{ids['upcoming']}/reschedule"),
        ("customer", "my-vouchers", "/vouchers"),
        ("customer", "voucher", f"/vouchers/{ids['voucher']}"),
        ("customer", "feeds", "/feeds"),
        ("customer", "inbox", "/notifications"),
        ("customer", "waitlist", "/waitlist"),
        ("customer", "account", "/account"),
        ("lab", "lab-dashboard", "/lab"),
        ("lab", "approvals", "/approvals"),
        ("lab", "lab-schedule-day", "/lab/schedule?date=2026-12-01"),
        ("lab", "lab-schedule-week", "/lab/schedule?view=week&date=2026-12-01"),
        ("lab", "booking-lab-view", f"/bookings/{ids['today']}"),
        ("lab", "complete-form", f"/lab/bookings/{ids['today']}/complete"),
        ("lab", "lab-resources", "/lab/resources"),
        ("lab", "training", "/training"),
        ("lab", "claims", "/claims"),
        ("lab", "claim-new", "/claims/new"),
        ("lab", "claim-draft", f"/claims/{ids['draft']}"),
        ("bureau", "bureau-home", "/bureau"),
        ("bureau", "voucher-issue", "/bureau/vouchers/new"),
        ("bureau", "voucher-batch", "/bureau/vouchers/batch"),
        ("bureau", "bureau-vouchers", "/vouchers"),
        ("bureau", "claim-audit", f"/claims/{ids['claim']}"),
        ("bureau", "reports", "/reports"),
        (
            "bureau",
            "report-settlement",
            "/reports/voucher-settlement?from=2026-01-01&to=2026-12-01",
        ),
        ("bureau", "report-open-sharing", "/reports/open-sharing?year=2026"),
        ("admin", "admin-home", "/admin"),
        ("admin", "admin-organizations", "/admin/organizations"),
        ("admin", "admin-users", "/admin/users"),
        ("admin", "admin-holidays", "/admin/calendar"),
        ("admin", "outbox", "/outbox"),
    ]


ENGLISH = {"booking-form", "lab-dashboard", "claim-audit", "my-bookings"}


def serve(app):
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def sign_in(page, role: str) -> None:
    email, password = ACCOUNTS[role]
    page.goto("/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("form.card button[type=submit]").click()
    page.wait_for_load_state("networkidle")


#: Pages that did not answer 200: (shot name, path, status).
FAILED: list[tuple[str, str, int]] = []


def _visit(page, path: str, name: str) -> None:
    answer = page.goto(path)
    page.wait_for_load_state("networkidle")
    if answer is None or answer.status != 200:
        FAILED.append((name, path, answer.status if answer else 0))


def take(browser, base_url: str, out: Path, shots, english: bool) -> int:
    count = 0
    by_role: dict[str, list] = {}
    for role, name, path in shots:
        by_role.setdefault(role, []).append((name, path))
    for role, items in by_role.items():
        for size_name, (width, height) in SIZES.items():
            context = browser.new_context(
                base_url=base_url,
                locale="zh-CN",
                timezone_id="Asia/Shanghai",
                viewport={"width": width, "height": height},
                device_scale_factor=1,
            )
            page = context.new_page()
            if role != "anon":
                sign_in(page, role)
            for name, path in items:
                _visit(page, path, f"{role}-{name}-{size_name}")
                target = out / f"{role}-{name}-{size_name}.png"
                page.screenshot(path=str(target), full_page=True)
                count += 1
            if english and any(name in ENGLISH for name, _ in items):
                # The choice is kept on the signed-in user's account too:
                # switch back to Chinese afterwards, for the next width.
                page.goto("/")
                page.get_by_role("button", name="English").click()
                page.wait_for_load_state("networkidle")
                for name, path in items:
                    if name in ENGLISH:
                        _visit(page, path, f"{role}-{name}-{size_name}-en")
                        page.screenshot(
                            path=str(out / f"{role}-{name}-{size_name}-en.png"), full_page=True
                        )
                        count += 1
                page.goto("/")
                page.get_by_role("button", name="中文").click()
                page.wait_for_load_state("networkidle")
            context.close()
    return count


def _has_chinese_font() -> bool:
    import shutil
    import subprocess

    if not shutil.which("fc-list"):
        return True  # cannot tell
    found = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False)
    return bool(found.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "screenshots"))
    parser.add_argument("--only", default="", help="take only pages whose name contains this")
    parser.add_argument("--no-english", action="store_true")
    args = parser.parse_args()

    if not Path(CHROMIUM).exists():
        sys.exit(f"needs {CHROMIUM}: apt-get install -y chromium")
    if not _has_chinese_font():
        print(
            "warning: no Chinese font, Chinese text will show as boxes "
            "(apt-get install -y fonts-wqy-microhei)",
            file=sys.stderr,
        )

    import time_machine
    from playwright.sync_api import sync_playwright

    from booking import create_app
    from booking.extensions import db

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="jcg-shots-"))
    app = create_app(
        {
            "ENV_NAME": "testing",
            "DATABASE_URL": f"sqlite:///{workdir / 'shots.sqlite3'}",
            "RATELIMIT_ENABLED": False,
        }
    )
    app.instance_path = str(workdir)
    started = time.monotonic()
    with time_machine.travel(NOW, tick=True) as traveller:
        with app.app_context():
            db.create_all()
        ids = build_story(app, traveller)
        shots = [s for s in pages(ids) if args.only in s[1] or args.only == s[0]]
        server, base_url = serve(app)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
                )
                count = take(browser, base_url, out, shots, not args.no_english)
                browser.close()
        finally:
            server.shutdown()
    print(f"{count} screenshots in {out} ({time.monotonic() - started:.0f} s)")
    for name, path, status in FAILED:
        print(f"page answered {status}: {name} {path}", file=sys.stderr)
    if FAILED:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""One command for the load and scale benchmark: the data set, the mixed
workload beside its ceiling, the growth from 10k to 1M bookings, charts,
and BENCHMARKS.md.

    .venv/bin/python bench/run.py [--size small|province] [--clients 64]
        [--seconds 60] [--no-growth] [--growth-requests 60] [--profile] [--regenerate]

Databases are named ``<prefix>_load``, ``<prefix>_growth_<n>``,
``<prefix>_small`` with the prefix ``BENCH_DB_PREFIX`` (default ``bench``).

- ``province`` (default): the province (``<prefix>_load``, 2,000 resources,
  5,000 enterprises, 1,000,000 bookings) is generated when missing or older
  than a week; ``bench/load.py`` runs on it; ``bench/growth.py`` times every
  endpoint at 10k, 100k and 1M bookings (``--profile``: and profiles the
  ones that grow); the figures go to ``BENCHMARKS.md`` at the project root
  and the charts to ``bench/charts/*.svg``; the raw figures to
  ``bench/results/<size>.json``.
- ``small``: a small data set (``<prefix>_small``, made afresh), a short run
  with 16 clients, no growth; figures printed and written to
  ``bench/results/small.json`` only (BENCHMARKS.md keeps the province's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import generate  # noqa: E402
import growth  # noqa: E402
import load  # noqa: E402

CHARTS = ROOT / "bench" / "charts"
RESULTS = ROOT / "bench" / "results"


# --- the machine ----------------------------------------------------------------------------


def machine(database_url: str) -> dict:
    import psycopg

    memory = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = int(line.split()[1]) // 1024
    with psycopg.connect(database_url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        settings = dict(
            conn.execute(
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
                "('shared_buffers', 'work_mem', 'max_connections', 'synchronous_commit')"
            ).fetchall()
        )
    try:
        gunicorn = subprocess.run(
            [load.GUNICORN, "--version"], capture_output=True, text=True
        ).stdout
    except OSError:
        gunicorn = "?"
    return {
        "nproc": os.cpu_count(),
        "memory_mb": memory,
        "postgresql": version,
        "postgresql_settings": settings,
        "python": platform.python_version(),
        "gunicorn": gunicorn.strip(),
        "kernel": platform.release(),
    }


# --- charts (SVG drawn by hand: no plotting library on the machine) ------------------------------


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
            f"<title>{_esc(title)}</title>",
            '<rect width="100%" height="100%" fill="white"/>',
            f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" '
            f'font-weight="bold">{_esc(title)}</text>',
            *body,
            "</svg>",
        ]
    )


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chart_throughput(result: dict) -> str:
    bars = [("platform (mixed)", result["app"]["total"]["rps"], "#3b6ea5")]
    if result.get("bare"):
        bars.insert(0, ("ceiling (bare Flask)", result["bare"]["total"]["rps"], "#999999"))
    width, height, left, top = 640, 60 + 40 * len(bars) + 30, 170, 40
    scale = (width - left - 80) / max(v for _n, v, _c in bars)
    body = []
    for i, (name, value, colour) in enumerate(bars):
        y = top + i * 40
        body.append(f'<text x="{left - 8}" y="{y + 20}" text-anchor="end">{_esc(name)}</text>')
        body.append(
            f'<rect x="{left}" y="{y + 5}" width="{value * scale:.1f}" height="24" '
            f'fill="{colour}"/>'
        )
        body.append(
            f'<text x="{left + value * scale + 6:.1f}" y="{y + 22}">{value:.0f} req/s</text>'
        )
    if result.get("bare"):
        half = result["bare"]["total"]["rps"] / 2 * scale + left
        y0, y1 = top, top + 40 * len(bars)
        body.append(
            f'<line x1="{half:.1f}" y1="{y0}" x2="{half:.1f}" y2="{y1}" stroke="#c0392b" '
            'stroke-dasharray="4 3"/>'
        )
        body.append(
            f'<text x="{half + 4:.1f}" y="{y1 + 14}" fill="#c0392b">target: half the '
            f"ceiling (ratio {result['ratio']:.2f})</text>"
        )
    title = f"Throughput, {result['clients']} clients, same mix of reads and writes"
    return _svg(width, height, body, title)


def chart_latency(result: dict) -> str:
    rows = [
        (n, result["app"]["endpoints"][n])
        for n, _k, _s in load.MIX
        if n in result["app"]["endpoints"]
    ]
    width, left, top, row_h = 760, 150, 40, 26
    height = top + row_h * len(rows) + 60
    peak = max(max(r["p99"] for _n, r in rows), 260)
    scale = (width - left - 40) / peak
    body = []
    for i, (name, row) in enumerate(rows):
        y = top + i * row_h
        body.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">{_esc(name)}</text>')
        for key, colour in (("p99", "#d6e4f0"), ("p95", "#8fb3d9"), ("p50", "#3b6ea5")):
            body.append(
                f'<rect x="{left}" y="{y + 4}" width="{row[key] * scale:.1f}" height="16" '
                f'fill="{colour}"><title>{name} {key} {row[key]:.1f} ms</title></rect>'
            )
    x = left + 250 * scale
    y1 = top + row_h * len(rows)
    body.append(
        f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{y1}" stroke="#c0392b" '
        'stroke-dasharray="4 3"/>'
    )
    body.append(f'<text x="{x + 4:.1f}" y="{y1 + 14}" fill="#c0392b">p99 target 250 ms</text>')
    legend_y = y1 + 34
    for j, (key, colour) in enumerate((("p50", "#3b6ea5"), ("p95", "#8fb3d9"), ("p99", "#d6e4f0"))):
        body.append(
            f'<rect x="{left + j * 90}" y="{legend_y - 11}" width="14" height="14" '
            f'fill="{colour}" stroke="#666"/>'
        )
        body.append(f'<text x="{left + j * 90 + 20}" y="{legend_y}">{key}</text>')
    return _svg(width, height, body, f"Latency per endpoint under {result['clients']} clients (ms)")


def chart_growth(out: dict) -> str:
    import math

    sizes = sorted(out["sizes"], key=int)
    names = list(out["sizes"][sizes[-1]]["endpoints"])
    width, height, left, right, top, bottom = 820, 460, 60, 230, 40, 50
    values = [out["sizes"][s]["endpoints"][n]["p50"] for s in sizes for n in names]
    y_max = max(values) * 1.1
    y_log = y_max / max(min(values), 0.1) > 30
    x_of = {
        s: left + i * (width - left - right) / max(1, len(sizes) - 1) for i, s in enumerate(sizes)
    }

    def y_of(v: float) -> float:
        if y_log:
            low = math.log10(max(min(values), 0.1) / 1.5)
            return top + (height - top - bottom) * (
                1 - (math.log10(max(v, 0.1)) - low) / (math.log10(y_max) - low)
            )
        return top + (height - top - bottom) * (1 - v / y_max)

    palette = [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
        "#393b79",
        "#637939",
        "#8c6d31",
        "#843c39",
    ]
    body = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        'stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#333"/>',
    ]
    for s in sizes:
        body.append(
            f'<text x="{x_of[s]:.1f}" y="{height - bottom + 18}" text-anchor="middle">'
            f"{int(s):,}</text>"
        )
    body.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle">'
        "bookings in the database</text>"
    )
    ticks = (
        [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
        if y_log
        else [y_max * k / 5 for k in range(6)]
    )
    for t in ticks:
        if t > y_max or (y_log and t < min(values) / 1.5):
            continue
        body.append(f'<text x="{left - 6}" y="{y_of(t) + 4:.1f}" text-anchor="end">{t:.0f}</text>')
        body.append(
            f'<line x1="{left}" y1="{y_of(t):.1f}" x2="{width - right}" y2="{y_of(t):.1f}" '
            'stroke="#eee"/>'
        )
    body.append(
        f'<text x="14" y="{top + 100}" transform="rotate(-90 14 {top + 100})">median ms'
        f"{' (log)' if y_log else ''}</text>"
    )
    for i, name in enumerate(names):
        colour = palette[i % len(palette)]
        points = " ".join(
            f"{x_of[s]:.1f},{y_of(out['sizes'][s]['endpoints'][name]['p50']):.1f}" for s in sizes
        )
        body.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        ratio = out["verdicts"][name]["ratio"]
        body.append(
            f'<text x="{width - right + 10}" y="{top + 14 + i * 16}" fill="{colour}">'
            f"{_esc(name)} ×{ratio:.2f}</text>"
        )
    return _svg(width, height, body, "Median time of a request as the bookings grow")


# --- BENCHMARKS.md ------------------------------------------------------------------------------


def markdown(
    size: str, command: str, info: dict, meta: dict, result: dict, grown: dict | None
) -> str:
    t = result["app"]["total"]
    lines = [
        "# Benchmarks",
        "",
        f"Latest figures of `{command}` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC), written by "
        "that command; where the time goes: *Notes* at the end. How it works: "
        "`bench/README.md` (section *Load and scale*); raw figures in `bench/results/`, "
        "profiles in `bench/profiles/`.",
        "",
        "## Machine",
        "",
        f"- {info['nproc']} CPUs, {info['memory_mb']:,} MB memory, Linux {info['kernel']}; "
        f"load average {result['load_before'][0]:.2f} before the mixed run (other work on "
        f"the machine shows here), {result['load_after'][0]:.2f} after",
        f"- PostgreSQL {info['postgresql']} ("
        + ", ".join(f"{k} {v}" for k, v in info["postgresql_settings"].items())
        + f"), Python {info['python']}, {info['gunicorn']}, "
        f"{result['workers']} sync workers",
        "",
        "## Data set",
        "",
        f"`bench/generate.py --size {size}` ({meta.get('generated_at', '?')}, "
        f"{meta.get('seconds_total', '?')} s): "
        + ", ".join(
            f"{k} {v:,}"
            for k, v in meta.get("counts", {}).items()
            if k
            in (
                "organizations",
                "users",
                "resources",
                "reservations",
                "voucher_ledger_entries",
                "vouchers",
                "claim_lines",
                "ratings",
            )
        )
        + f"; bookings from {meta.get('first_day')} to {meta.get('last_day')}, by state: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(meta.get("statuses", {}).items())),
        "",
        f"## Mixed workload: {result['clients']} clients, {result['seconds']:.0f} s",
        "",
        "| endpoint | share | req/s | p50 ms | p95 ms | p99 ms | p50 × ceiling | answers |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    bare = result.get("bare", {}).get("endpoints", {})
    for name, _kind, _share in load.MIX:
        row = result["app"]["endpoints"].get(name)
        if not row:
            continue
        ref = bare.get("bare write" if row["kind"] == "write" else "bare read")
        times = f"{row['p50'] / ref['p50']:.1f}" if ref else "–"
        answers = ", ".join(f"{k}: {v}" for k, v in row["statuses"].items())
        lines.append(
            f"| {name} | {row['count'] / t['count'] * 100:.1f} % | {row['rps']:.1f} | "
            f"{row['p50']:.1f} | {row['p95']:.1f} | {row['p99']:.1f} | {times} | "
            f"{answers} |"
        )
    lines.append(
        f"| **platform, all** | 100 % | **{t['rps']:.1f}** | {t['p50']:.1f} | "
        f"{t['p95']:.1f} | **{t['p99']:.1f}** | | 5xx {t['5xx']} |"
    )
    if result.get("bare"):
        for name in ("bare read", "bare write"):
            row = bare.get(name)
            if row:
                lines.append(
                    f"| {name} (ceiling) | | {row['rps']:.1f} | {row['p50']:.1f} | "
                    f"{row['p95']:.1f} | {row['p99']:.1f} | | |"
                )
        b = result["bare"]["total"]
        lines.append(
            f"| **ceiling, all** | 100 % | **{b['rps']:.1f}** | {b['p50']:.1f} | "
            f"{b['p95']:.1f} | {b['p99']:.1f} | | |"
        )
    lines += ["", "| target | figure | met |", "| --- | --- | --- |"]
    if result.get("bare"):
        lines.append(
            f"| throughput ≥ half the ceiling (same clients, same mix) | "
            f"{result['ratio']:.2f} | {'yes' if result['ratio'] >= 0.5 else 'no'} |"
        )
    lines.append(f"| p99 < 250 ms | {t['p99']:.0f} ms | {'yes' if t['p99'] < 250 else 'no'} |")
    lines.append(f"| zero 5xx | {t['5xx']} | {'yes' if t['5xx'] == 0 else 'no'} |")
    for name, count in result["checks"].items():
        lines.append(f"| {name}: 0 | {count} | {'yes' if count == 0 else 'no'} |")
    if grown:
        sizes = sorted(grown["sizes"], key=int)
        lines += [
            "",
            "## Growth: median of one request (one client, one worker per size)",
            "",
            "The sizes side by side: one gunicorn per database, each endpoint's requests sent "
            "to the sizes in turn, so the machine's noise falls on all alike; "
            f"{grown['requests']} measured requests of each endpoint at each size, load average "
            f"{grown['sizes'][sizes[-1]]['load'][0]:.2f} at the end.",
            "",
            "| endpoint | "
            + " | ".join(f"{int(s):,}" for s in sizes)
            + (" | national world* " if grown.get("national") else "")
            + " | ratio | k | 50M (est.) |",
            "| --- | "
            + " | ".join("---:" for _ in sizes)
            + (" | ---:" if grown.get("national") else "")
            + " | ---: | ---: | ---: |",
        ]
        for name, verdict in grown["verdicts"].items():
            cells = " | ".join(f"{grown['sizes'][s]['endpoints'][name]['p50']:.1f}" for s in sizes)
            if grown.get("national"):
                national = grown["national"]["endpoints"].get(name, {})
                cells += f" | {national.get('p50', float('nan')):.1f}"
            mark = "" if verdict["flat"] else " **grows**"
            est = grown["extrapolated_50M"].get(name, float("nan"))
            lines.append(
                f"| {name} | {cells} | {verdict['ratio']:.2f}{mark} | "
                f"{verdict['exponent']:.2f} | {est:.0f} |"
            )
        worst = max(grown["verdicts"].values(), key=lambda v: v["ratio"])["ratio"]
        lines += [
            "",
            f"Target: no endpoint more than 1.5× slower at 1M than at 10k "
            f"(worst ratio {worst:.2f}: {'met' if worst <= 1.5 else 'not met'}). "
            "*ratio*: median at the largest size over the smallest; *k*: the power of the "
            "bookings the median grows with, fitted over all sizes (0 flat, 1 proportional); "
            "*50M (est.)*: the largest size's median grown by that power to 50 million "
            "bookings (k below 0 taken as 0; a rough guess, an index lookup grows less).",
        ]
        if grown.get("national"):
            lines.append(
                "*national world*: 100,000 resources and 250,000 enterprises with "
                f"{grown['national']['bookings']:,} bookings."
            )
        if grown.get("profiles"):
            lines += ["", "Profiles: " + ", ".join(f"`{p}`" for p in grown["profiles"].values())]
    lines += [
        "",
        "## Charts",
        "",
        "![throughput](bench/charts/throughput.svg)",
        "![latency](bench/charts/latency.svg)",
    ]
    if grown:
        lines.append("![growth](bench/charts/growth.svg)")
    return "\n".join(lines) + "\n"


NOTES_MARK = "<!-- notes: kept as written when bench/run.py rewrites the figures above -->"


def with_notes(figures: str, path: Path) -> str:
    """The figures, then the notes of the BENCHMARKS.md already there
    (everything from ``NOTES_MARK`` on), kept as written."""
    if path.exists():
        old = path.read_text()
        if NOTES_MARK in old:
            return figures + "\n" + old[old.index(NOTES_MARK) :]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["small", "province"], default="province")
    parser.add_argument("--clients", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--no-growth", action="store_true")
    parser.add_argument(
        "--growth-requests", type=int, default=60, help="measured requests per endpoint and size"
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--national-url")
    args = parser.parse_args()
    prefix = os.environ.get("BENCH_DB_PREFIX")
    command = (f"BENCH_DB_PREFIX={prefix} " if prefix else "") + " ".join(
        [".venv/bin/python", "bench/run.py", *sys.argv[1:]]
    )
    RESULTS.mkdir(exist_ok=True)
    if args.size == "small":
        url = f"postgresql://postgres@127.0.0.1:5432/{generate.DB_PREFIX}_small"
        generate.recreate_database(url)
        app = generate.make_app(url)
        generate.create_schema(app)
        meta = generate.generate(app, generate.SIZES["small"])
        clients, seconds, warmup = args.clients or 16, args.seconds or 10, 3
    else:
        url = growth.database_for(generate.SIZES["province"].bookings, regenerate=args.regenerate)
        meta = growth.existing_meta(url) or {}
        clients, seconds, warmup = args.clients or 64, args.seconds or 60, 10
    result = load.run(url, clients=clients, seconds=seconds, warmup=warmup, workers=args.workers)
    load.print_report(result)
    grown = None
    if args.size == "province" and not args.no_growth:
        grown = growth.run(
            [10_000, 100_000, 1_000_000],
            args.growth_requests,
            do_profile=args.profile,
            national_url=args.national_url,
        )
        print()
        growth.print_table(grown["sizes"], grown.get("national"))
    info = machine(url)
    (RESULTS / f"{args.size}.json").write_text(
        json.dumps(
            {"command": command, "machine": info, "meta": meta, "load": result, "growth": grown},
            indent=1,
            ensure_ascii=False,
            default=str,
        )
    )
    if args.size == "province":
        CHARTS.mkdir(exist_ok=True)
        (CHARTS / "throughput.svg").write_text(chart_throughput(result))
        (CHARTS / "latency.svg").write_text(chart_latency(result))
        if grown:
            (CHARTS / "growth.svg").write_text(chart_growth(grown))
        target = ROOT / "BENCHMARKS.md"
        figures = markdown(args.size, command, info, meta, result, grown)
        target.write_text(with_notes(figures, target))
        print("\nwrote BENCHMARKS.md and bench/charts/*.svg")
    failed = result["app"]["total"]["5xx"] or any(result["checks"].values())
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

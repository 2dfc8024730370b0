"""POST /api/forms/submit under load, next to the pgbench ceiling of the same statement.

What it does, in one run, on loopback:

1. creates its own database `crm_bench_<random>` and migrates it (`crm db upgrade`);
2. builds the exact SQL statement and parameters the API sends for one form submission, with
   the API's own code (`domain.intake.forms.form_writes` + `domain.outbox.rows.one_statement`);
3. starts the API as production would (`crm api --workers N`, uvicorn), with CRM_RATE_LIMIT off
   by default (all the load comes from one loopback address: `--rate-limit` to price the
   limiter), and waits for `/health/live`;
4. drives `POST /api/forms/submit` with `--connections` concurrent clients (wrk with a Lua script,
   a distinct email per request) for `--duration` seconds after a short warm-up, then stops the API;
5. runs the captured statement with pgbench (same clients, same duration, same warm-up,
   `-M prepared`, autocommit like the API): the ceiling of the same three inserts;
6. prints requests/s, p50 and p99 for both, the ratio API / ceiling and whether the targets
   (ratio >= 50 %, API p99 < 100 ms) are met; drops the database.

Run it (PostgreSQL on 127.0.0.1:5432 with trust auth; `pgbench` on PATH; wrk recommended):

    uv run python bench/forms_submit.py            # 20 s, 64 connections, 2 uvicorn workers
    uv run python bench/forms_submit.py --quick    # 5 s

Without wrk (`apt-get install wrk`), a Python load generator (aiohttp, one separate process)
runs instead and the output says so; it needs far more CPU than wrk, so the API figure is lower.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ADMIN_URL = os.environ.get("CRM_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PATH = "/api/forms/submit"
TARGET_RATIO = 0.50
TARGET_P99_MS = 100.0
TABLES = ("form_submissions", "leads", "crm_notifications")


@dataclass
class Figures:
    """One load run: throughput and latency (milliseconds)."""

    tool: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    notes: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def crm_executable() -> str:
    exe = Path(sys.executable).parent / "crm"
    if exe.exists():
        return str(exe)
    found = shutil.which("crm")
    if not found:
        sys.exit("the `crm` console script is not installed: run this with `uv run`")
    return found


def db_url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return math.nan
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def row_counts(url: str) -> dict[str, int]:
    """Rows of the three tables, from one snapshot (one statement)."""
    import psycopg

    sql = "SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in TABLES)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return {t: int(n) for t, n in zip(TABLES, row, strict=True)}


# --------------------------------------------------------------------------- capture


def capture_statement(url: str, env: dict[str, str]) -> tuple[str, dict[str, Any], str]:
    """The statement (psycopg `%(name)s` style) and parameters the API sends for one form.

    Built by the API's own code for its hot path (`submit_form_alone`: the rows of
    `form_writes`, bound by `domain.outbox.rows.one_statement`), so the ceiling follows the SQL.
    """
    import msgspec

    from domain.intake.commands import SubmitForm
    from domain.intake.forms import form_writes
    from domain.intake.origin import Origin
    from domain.outbox.rows import one_statement
    from infra.db import Database
    from infra.settings import Settings

    settings = Settings.from_env({**env, "DATABASE_URL": url})
    email = "capture@example.com"
    cmd = msgspec.json.decode(
        json.dumps({"formType": "quote_request", "email": email, "name": "Bench"}),
        type=SubmitForm,
    )
    origin = Origin(ip_address="127.0.0.1", user_agent="wrk", request_id=uuid.uuid4().hex)
    _, writes = form_writes(cmd, origin, settings.routes)
    db = Database(settings)
    try:
        stmt = one_statement(db.dialect, writes)
    finally:
        asyncio.run(db.dispose())
    if stmt is None:
        sys.exit("the form submission is not one statement on this database")
    return stmt.sql, stmt.params, email


def pgbench_script(statement: str, params: dict[str, Any], email: str) -> tuple[str, list[str]]:
    """The captured statement as a pgbench script, its parameters as `-D` variables.

    Parameters stay parameters (pgbench -M prepared binds them like psycopg does), except:
    UUIDs become gen_random_uuid(), timestamps now(), the email one distinct per transaction,
    NULLs literal NULLs. JSON documents keep their captured text (ids in them are then constant,
    which costs the database the same).
    """
    defines: list[str] = []
    sql = statement
    for name, value in sorted(params.items(), key=lambda kv: -len(kv[0])):
        placeholder = f"%({name})s"
        if isinstance(value, uuid.UUID):
            expr = "gen_random_uuid()"
        elif isinstance(value, datetime | date):
            expr = "now()"
        elif value is None:
            expr = "NULL"
        elif value == email:
            expr = "('bench-' || :client_id::text || '-' || :n::text || '@example.com')"
        else:
            if hasattr(value, "obj"):  # psycopg Json / Jsonb wrapper
                text = json.dumps(value.obj, default=str)
            elif isinstance(value, dict | list):
                text = json.dumps(value, default=str)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = str(value)
            var = f"p_{name}"
            defines += ["-D", f"{var}={text}"]
            expr = f":{var}"
        sql = sql.replace(placeholder, expr)
    if "%(" in sql:
        sys.exit("could not map every parameter of the captured statement to pgbench")
    script = "\\set n random(1, 1000000000)\n" + sql.strip().rstrip(";") + ";\n"
    return script, defines


# --------------------------------------------------------------------------- the API server


def start_api(
    env: dict[str, str], port: int, workers: int, logfile: Path
) -> subprocess.Popen[bytes]:
    cmd = [crm_executable(), "api", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    out = logfile.open("wb")
    proc = subprocess.Popen(
        cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the API exited with {proc.returncode}:\n{logfile.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1) as r:
                if r.status == 200:
                    return proc
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    stop_api(proc)
    sys.exit(f"the API did not answer /health/live within 60 s:\n{logfile.read_text()[-3000:]}")


def stop_api(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # uvicorn's supervisor stops its workers
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group this script created for it
        proc.wait(timeout=10)


def smoke_test(port: int) -> dict[str, Any]:
    body = json.dumps({"formType": "quote_request", "email": "smoke@example.com", "name": "Bench"})
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{PATH}",
        data=body.encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        answer: dict[str, Any] = json.loads(r.read())
        if r.status != 201 or "formSubmissionId" not in answer:
            sys.exit(f"unexpected answer to one POST: {r.status} {answer}")
    return answer


# --------------------------------------------------------------------------- load generators

WRK_LUA = r"""
local counter = 0
local threads = {}
local headers = {["Content-Type"] = "application/json"}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"formType":"quote_request","email":"bench-%s-%d-%d@example.com","name":"Bench"}',
    RUN, tid, counter)
  return wrk.format("POST", PATH, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def run_wrk(
    port: int, seconds: int, connections: int, threads: int, run_tag: str, tmp: Path
) -> Figures:
    script = tmp / f"post_{run_tag}.lua"
    script.write_text(f'RUN = "{run_tag}"\nPATH = "{PATH}"\n' + WRK_LUA)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    cmd += ["--latency", "-s", str(script), f"http://127.0.0.1:{port}"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if done.returncode != 0 or line is None:
        sys.exit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    r = json.loads(line.split(" ", 1)[1])
    secs = r["duration_us"] / 1e6
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return Figures(
        tool=f"wrk -t{threads} -c{connections}",
        requests=r["requests"],
        seconds=secs,
        rps=(r["requests"] - r["status"]) / secs,
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        errors=errors,
        notes={k: r[k] for k in ("connect", "read", "write", "status", "timeout", "max_us")},
    )


async def _python_load(port: int, seconds: float, connections: int, run_tag: str) -> dict[str, Any]:
    import aiohttp
    import msgspec

    url = f"http://127.0.0.1:{port}{PATH}"
    latencies: list[float] = []
    errors = 0
    counter = 0
    deadline = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def client(cid: int) -> None:
            nonlocal errors, counter
            while time.perf_counter() < deadline:
                counter += 1
                email = f"bench-{run_tag}-{cid}-{counter}@example.com"
                body = msgspec.json.encode(
                    {"formType": "quote_request", "email": email, "name": "Bench"}
                )
                t0 = time.perf_counter()
                try:
                    async with session.post(
                        url, data=body, headers={"content-type": "application/json"}
                    ) as resp:
                        await resp.read()
                        if resp.status != 201:
                            errors += 1
                            continue
                except aiohttp.ClientError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "ok": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def run_python_load(port: int, seconds: int, connections: int, run_tag: str) -> Figures:
    """The fallback: this same script in a separate process, aiohttp, one event loop."""
    cmd = [
        sys.executable,
        __file__,
        "--_loadgen",
        str(port),
        str(seconds),
        str(connections),
        run_tag,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"the Python load generator failed:\n{done.stderr}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return Figures(
        tool=f"python aiohttp, {connections} connections, 1 process",
        requests=r["ok"] + r["errors"],
        seconds=r["seconds"],
        rps=r["ok"] / r["seconds"],
        p50_ms=r["p50_ms"],
        p99_ms=r["p99_ms"],
        errors=r["errors"],
    )


# --------------------------------------------------------------------------- pgbench


def run_pgbench(
    url: str, script: str, defines: list[str], seconds: int, clients: int, threads: int, tmp: Path
) -> Figures:
    work = tmp / f"pgbench_{seconds}s_{time.monotonic_ns()}"
    work.mkdir()
    (work / "forms_submit.sql").write_text(script)
    cmd = ["pgbench", "-n", "-M", "prepared", f"-c{clients}", f"-j{threads}", f"-T{seconds}"]
    cmd += ["-l", "-f", "forms_submit.sql", *defines, url]
    done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"pgbench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    tps = next(
        float(ln.split("=")[1].split()[0])
        for ln in done.stdout.splitlines()
        if ln.startswith("tps =")
    )
    failed = next(
        (int(ln.split(":")[1].split()[0]) for ln in done.stdout.splitlines() if "failed" in ln),
        0,
    )
    lat: list[float] = []
    for f in work.glob("pgbench_log.*"):  # client_id tx_no time_us script_no epoch epoch_us
        for ln in f.read_text().splitlines():
            parts = ln.split()
            if len(parts) >= 3 and parts[2].isdigit():
                lat.append(int(parts[2]) / 1000)
    lat.sort()
    shutil.rmtree(work, ignore_errors=True)
    return Figures(
        tool=f"pgbench -M prepared -c{clients} -j{threads}",
        requests=len(lat),
        seconds=float(seconds),
        rps=tps,
        p50_ms=percentile(lat, 50),
        p99_ms=percentile(lat, 99),
        errors=failed,
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--duration", type=int, default=20, help="seconds of each measured run")
    p.add_argument("--connections", type=int, default=64, help="concurrent clients")
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    p.add_argument("--quick", action="store_true", help="5 s runs, 1 s warm-ups")
    p.add_argument("--threads", type=int, default=2, help="wrk threads and pgbench -j")
    p.add_argument("--warmup", type=int, default=None, help="warm-up seconds (default 3)")
    p.add_argument(
        "--pool-size",
        type=int,
        default=None,
        help="CRM_DB_POOL_SIZE for the API (default: from the environment, else the app default)",
    )
    p.add_argument(
        "--rate-limit",
        default="off",
        help="CRM_RATE_LIMIT for the API (default off: every request comes from one loopback "
        "address, so a per-client limit would only measure 429s)",
    )
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.duration = 5
    if args.warmup is None:
        args.warmup = 1 if args.quick else 3
    return args


def report(args: argparse.Namespace, api: Figures, ceiling: Figures, info: dict[str, Any]) -> None:
    ratio = api.rps / ceiling.rps if ceiling.rps else 0.0
    ratio_ok = ratio >= TARGET_RATIO
    p99_ok = api.p99_ms < TARGET_P99_MS
    rows = [
        ("", "req/s", "p50 ms", "p99 ms", "errors"),
        ("API  POST " + PATH, f"{api.rps:,.0f}", f"{api.p50_ms:.1f}", f"{api.p99_ms:.1f}",
         str(api.errors)),
        ("ceiling  pgbench, same statement", f"{ceiling.rps:,.0f}", f"{ceiling.p50_ms:.1f}",
         f"{ceiling.p99_ms:.1f}", str(ceiling.errors)),
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    print(f"forms_submit benchmark  ({os.cpu_count()} CPU cores shared by the load generator, "
          "the API and PostgreSQL)")  # fmt: skip
    for r in rows:
        print(
            "  "
            + r[0].ljust(widths[0])
            + "".join("  " + c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))
        )
    print()
    print(f"  ratio API / ceiling   {ratio:6.1%}   target >= {TARGET_RATIO:.0%}: "
          f"{'met' if ratio_ok else 'MISSED'}")  # fmt: skip
    print(f"  API p99               {api.p99_ms:6.1f} ms  target < {TARGET_P99_MS:.0f} ms: "
          f"{'met' if p99_ok else 'MISSED'}")  # fmt: skip
    print()
    print("  settings")
    for k, v in info.items():
        print(f"    {k:<14} {v}")
    print()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"api": asdict(api), "ceiling": asdict(ceiling), "ratio": ratio, "settings": info},
                indent=2,
            )
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import psycopg

    if shutil.which("pgbench") is None:
        sys.exit("pgbench is not on PATH")
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
    if args.loadgen == "wrk" and not shutil.which("wrk"):
        sys.exit("wrk is not on PATH (apt-get install wrk)")
    if not use_wrk:
        log("wrk not found: the Python (aiohttp) load generator runs instead")

    name = f"crm_bench_{uuid.uuid4().hex[:10]}"
    url = db_url(name)
    env = {k: v for k, v in os.environ.items() if k != "CRM_DEBUG"}
    env["DATABASE_URL"] = url
    if args.pool_size is not None:
        env["CRM_DB_POOL_SIZE"] = str(args.pool_size)
    env["CRM_RATE_LIMIT"] = args.rate_limit
    load_before = os.getloadavg()[0]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    log(f"database {name}")
    api_proc: subprocess.Popen[bytes] | None = None
    tmp = Path(tempfile.mkdtemp(prefix="crm_bench_"))
    try:
        subprocess.run([crm_executable(), "db", "upgrade"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        statement, params, email = capture_statement(url, env)
        script, defines = pgbench_script(statement, params, email)

        port = free_port()
        log(f"API: crm api --workers {args.workers} on 127.0.0.1:{port}")
        api_proc = start_api(env, port, args.workers, tmp / "api.log")
        smoke_test(port)
        before = row_counts(url)

        def load(seconds: int, tag: str) -> Figures:
            if use_wrk:
                return run_wrk(port, seconds, args.connections, args.threads, tag, tmp)
            return run_python_load(port, seconds, args.connections, tag)

        if args.warmup > 0:
            log(f"API warm-up {args.warmup} s")
            load(args.warmup, "w" + uuid.uuid4().hex[:6])
        mid = row_counts(url)
        log(f"API load {args.duration} s, {args.connections} connections")
        api = load(args.duration, uuid.uuid4().hex[:6])
        stop_api(api_proc)
        after = row_counts(url)
        written = {t: after[t] - mid[t] for t in TABLES}
        ok_responses = round(api.rps * api.seconds)
        # Requests still in flight when a run stops commit after it: rows >= answers 201.
        forms, leads, notes = (written[t] for t in TABLES)
        if forms < ok_responses or leads != forms or (forms and notes % forms):
            log(f"WARNING rows written {written} do not match {ok_responses} 201 answers")
        api.notes["rows_written"] = written
        api.notes["warmup_rows"] = {t: mid[t] - before[t] for t in TABLES}
        pool = env.get("CRM_DB_POOL_SIZE", "10 (default)")

        if args.warmup > 0:
            log(f"pgbench warm-up {args.warmup} s")
            run_pgbench(url, script, defines, args.warmup, args.connections, args.threads, tmp)
        log(f"pgbench {args.duration} s, {args.connections} clients")
        ceiling = run_pgbench(
            url, script, defines, args.duration, args.connections, args.threads, tmp
        )
        info = {
            "API server": f"crm api --workers {args.workers} (uvicorn: httptools and uvloop when "
            f"installed), CRM_DB_POOL_SIZE={pool}, CRM_RATE_LIMIT={args.rate_limit}",
            "load": f"{api.tool} -d{args.duration}s, POST {PATH} quote_request, distinct "
            f"emails; {args.warmup} s warm-up before each measured run",
            "ceiling": f"{ceiling.tool} -T{args.duration}: the API's own statement, built by "
            "domain.intake.forms (form_writes + outbox.one_statement): 3 inserts "
            "(form_submissions, leads, crm_notifications) in one statement, autocommit; "
            "ids by gen_random_uuid(), "
            "timestamps now(), JSON and strings bound as parameters",
            "rows (API)": ", ".join(f"{t} +{n}" for t, n in written.items())
            + f" for {ok_responses} answers 201",
            "machine": f"{os.cpu_count()} cores; load average {load_before:.2f} before the run, "
            f"{os.getloadavg()[0]:.2f} after (other processes skew both figures)",
            "database": f"{name} on {ADMIN_URL.rsplit('@', 1)[-1].rsplit('/', 1)[0]}"
            + (" (kept)" if args.keep_db else " (dropped at the end)"),
        }
        report(args, api, ceiling, info)  # a figure, not a test: the exit status stays 0
        return 0
    finally:
        if api_proc is not None:
            stop_api(api_proc)
        shutil.rmtree(tmp, ignore_errors=True)
        if not args.keep_db:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--_loadgen":
        _, _, port_, secs_, conns_, tag_ = sys.argv
        print(json.dumps(asyncio.run(_python_load(int(port_), float(secs_), int(conns_), tag_))))
        sys.exit(0)
    sys.exit(main())

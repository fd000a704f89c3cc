"""The simulated guardians of ``bench/load.py``, driven by Locust as a library.

``bench/load.py`` runs this file in a process of its own (Locust patches the standard
library with gevent on import)::

    python bench/_load_locust.py --host URL --families FILE --levels 4,8,16 --seconds 20

Each simulated guardian signs in once (its own made-up address in X-Forwarded-For,
as behind a load balancer), then, with no think time (a closed loop), either walks the
wizard (GET a step, POST "This is all still correct" or the answers shown, on to the
review, then from the first step again) or, for the baseline, GETs and POSTs the
minimal view of ``bench/_load_urls.py``: one step is one GET and one POST either way.

At each level (a number of simulated guardians, added to those already there) it
measures the wizard for ``--seconds``, then the baseline for as long, with the same
guardians and sessions. With ``--sign``, every guardian then walks on to the review
and signs once. The result is one line of JSON on standard output.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import gevent
import locust
from locust import FastHttpUser, constant, task
from locust.env import Environment
from locust.exception import StopUser
from locust.stats import StatsEntry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wizard import PASSWORD, Family, _step_data, _typed_data

BASELINE_URL = "/bench/minimal/"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

MODE = {"now": "wizard"}  # wizard, baseline or sign: what every guardian does next
COUNTS: Counter[str] = Counter()
FAMILIES: list[dict[str, Any]] = []
SEATS = itertools.count()
SIGN_IN_TIMEOUT = 90.0


def _csrf(html: str) -> str:
    found = CSRF.search(html)
    if found is None:
        raise RuntimeError("no CSRF token on the page")
    return found.group(1)


def _complain(mode: str, message: str) -> None:
    COUNTS[f"{mode} exceptions"] += 1
    if COUNTS["complaints"] < 5:  # enough to see what goes wrong, not a flood
        COUNTS["complaints"] += 1
        print(f"[{mode}] {message}", file=sys.stderr, flush=True)


class Guardian(FastHttpUser):
    wait_time = constant(0)  # a closed loop: the next request as soon as one is answered
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        seat = FAMILIES[next(SEATS)]
        self.family = Family(**seat["family"])
        self.login_url = seat["login_url"]
        self.first_step = seat["first_step_url"]
        self.url = self.first_step
        self.signed = False
        self.headers = {"X-Forwarded-For": self.family.address}
        page = self._send("GET", self.login_url, "sign in")
        response = (
            self._send(
                "POST",
                self.login_url,
                "sign in",
                {
                    "login": self.family.email,
                    "password": PASSWORD,
                    "csrfmiddlewaretoken": _csrf(page.text),
                },
                expect=(302,),
            )
            if page is not None
            else None
        )
        if response is None:
            COUNTS["sign-in failures"] += 1
            raise StopUser
        COUNTS["signed in"] += 1

    def _send(
        self,
        method: str,
        url: str,
        name: str,
        data: dict[str, Any] | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> Any:
        """One request, redirects not followed (each is its own request); a failure
        in Locust's figures unless it answers one of ``expect``."""
        headers = dict(self.headers)
        body = None
        if data is not None:
            body = urlencode(data, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        with self.client.request(
            method,
            url,
            name=name,
            data=body,
            headers=headers,
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code in expect:
                response.success()
                return response
            response.failure(f"{method} {name} answered {response.status_code}")
            return None

    @task
    def act(self) -> None:
        mode = MODE["now"]
        try:
            if mode == "baseline":
                self._baseline_step()
            elif mode == "sign" and self.signed:
                gevent.sleep(0.2)
            else:
                self._wizard_step(mode)
        except StopUser:
            raise
        except Exception:
            self.url = self.first_step
            _complain(mode, traceback.format_exc(limit=3))

    def _baseline_step(self) -> None:
        page = self._send("GET", BASELINE_URL, "baseline GET")
        if page is None:
            return
        token = page.text.strip()
        if self._send("POST", BASELINE_URL, "baseline POST", {"csrfmiddlewaretoken": token}):
            COUNTS["baseline steps"] += 1

    def _wizard_step(self, mode: str) -> None:
        """GET the current step and POST it; on the review, sign (in sign mode) or
        start again from the first step."""
        step = self.url.rstrip("/").rsplit("/", 1)[1]
        kind = "child" if step.startswith("child-") else step
        page = self._send("GET", self.url, f"{mode} GET {kind}")
        if page is None:
            self.url = self.first_step
            return
        html = page.text
        if step == "review" and mode != "sign":
            self.url = self.first_step
            return
        data = {**_step_data(self.family, step, html), "csrfmiddlewaretoken": _csrf(html)}
        if step == "review":
            self._sign(data)
            return
        response = self._send("POST", self.url, f"{mode} POST {kind}", data, expect=(200, 302))
        if response is not None and response.status_code == 200:
            # "All still correct" refused: something is missing on file; type it in.
            shown = response.text
            data = {**_typed_data(self.family, step, shown), "csrfmiddlewaretoken": _csrf(shown)}
            response = self._send("POST", self.url, f"{mode} POST {kind}", data, expect=(302,))
        if response is None:
            self.url = self.first_step
            return
        location = response.headers.get("Location") or ""
        step_prefix = self.first_step.rstrip("/").rsplit("/", 1)[0] + "/"
        if not location.startswith(step_prefix) or location == self.url:
            _complain(mode, f"{step} led to {location!r}")
            self.url = self.first_step
            return
        COUNTS[f"{mode} steps"] += 1
        self.url = location

    def _sign(self, data: dict[str, Any]) -> None:
        response = self._send("POST", self.url, "signature", data, expect=(302,))
        location = (response.headers.get("Location") or "") if response is not None else ""
        if "/registrations/" not in location:
            _complain("sign", f"signing led to {location!r}")
            self.url = self.first_step
            return
        self.signed = True
        COUNTS["signed"] += 1


def _figures(env: Environment, prefix: str, seconds: float, errors: int) -> dict[str, Any]:
    """Requests, latency and errors of the requests whose name starts with ``prefix``
    (``errors`` more, counted outside Locust), with the median of each kind."""
    total = StatsEntry(env.stats, prefix, "")
    medians = {}
    for (name, _method), entry in sorted(env.stats.entries.items()):
        if name.startswith(prefix) and entry.num_requests:
            total.extend(entry)
            medians[name.removeprefix(prefix).strip() or name] = round(entry.median_response_time)
    return {
        "requests": total.num_requests,
        "requests_per_s": round(total.num_requests / seconds, 1) if seconds else 0.0,
        "p50_ms": total.get_response_time_percentile(0.5),
        "p95_ms": total.get_response_time_percentile(0.95),
        "p99_ms": total.get_response_time_percentile(0.99),
        "errors": total.num_failures + errors,
        "median_ms_by_request": medians,
    }


def _measure(env: Environment, mode: str, seconds: float) -> dict[str, Any]:
    """``seconds`` of every guardian doing ``mode``, and what it gave."""
    MODE["now"] = mode
    env.stats.reset_all()
    for key in (f"{mode} steps", f"{mode} exceptions"):
        COUNTS[key] = 0
    started = time.perf_counter()
    gevent.sleep(seconds)
    elapsed = time.perf_counter() - started
    steps = COUNTS[f"{mode} steps"]
    return {
        "steps_per_s": round(steps / elapsed, 2),
        "steps": steps,
        "seconds": round(elapsed, 2),
        **_figures(env, f"{mode} ", elapsed, COUNTS[f"{mode} exceptions"]),
    }


def _wait_for(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        gevent.sleep(0.1)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--families", type=Path, required=True)
    parser.add_argument("--levels", required=True, help="comma-separated user counts")
    parser.add_argument("--seconds", type=float, required=True, help="per level and side")
    parser.add_argument("--warm", type=float, default=2.0, help="seconds before the first level")
    parser.add_argument("--sign", action="store_true")
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    FAMILIES.extend(json.loads(args.families.read_text()))
    if len(FAMILIES) < max(levels):
        raise SystemExit(f"{len(FAMILIES)} families for {max(levels)} simulated guardians")
    if not args.host.startswith(("http://127.", "http://localhost")):
        raise SystemExit("this benchmark only sends requests to 127.0.0.1")

    env = Environment(user_classes=[Guardian], host=args.host, events=locust.events)
    runner = env.create_local_runner()
    results: list[dict[str, Any]] = []
    sign: dict[str, Any] | None = None
    try:
        for level in levels:
            MODE["now"] = "wizard"
            failures_before = COUNTS["sign-in failures"]
            runner.start(level, spawn_rate=level)
            arrived = _wait_for(
                lambda level=level: COUNTS["signed in"] + COUNTS["sign-in failures"] >= level,
                SIGN_IN_TIMEOUT,
            )
            if not arrived or COUNTS["sign-in failures"] > failures_before:
                raise SystemExit(f"{COUNTS['signed in']} of {level} simulated guardians signed in")
            if not results:  # templates, translations, connections: not measured
                MODE["now"] = "wizard"
                gevent.sleep(args.warm)
                MODE["now"] = "baseline"
                gevent.sleep(args.warm / 2)
            wizard = _measure(env, "wizard", args.seconds)
            baseline = _measure(env, "baseline", args.seconds)
            results.append({"users": level, "wizard": wizard, "baseline": baseline})
            print(
                f"  {level} users: wizard {wizard['steps_per_s']} steps/s, "
                f"p95 {wizard['p95_ms']} ms, {wizard['errors']} errors; baseline "
                f"{baseline['steps_per_s']} steps/s, p95 {baseline['p95_ms']} ms",
                file=sys.stderr,
                flush=True,
            )
        if args.sign:
            MODE["now"] = "sign"
            env.stats.reset_all()
            started = time.perf_counter()
            users = levels[-1]
            _wait_for(
                lambda: COUNTS["signed"] + COUNTS["sign exceptions"] >= users, SIGN_IN_TIMEOUT
            )
            elapsed = time.perf_counter() - started
            sign = {
                "users": users,
                "signed": COUNTS["signed"],
                "seconds": round(elapsed, 2),
                **_figures(env, "signature", elapsed, COUNTS["sign exceptions"]),
            }
    finally:
        runner.quit()
    print(json.dumps({"levels": results, "sign": sign}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

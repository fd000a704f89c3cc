"""A local stand-in for Stripe's API, for the tests (Stripe cannot be reached here).

A small threaded HTTP server on 127.0.0.1 (a free port) that answers the calls
``payments.stripe_gateway`` makes, with Stripe-shaped JSON built from Stripe's
published example objects (``tests/data/stripe``): checkout sessions (create,
retrieve, expire) and refunds (create, list). Like Stripe, it answers a repeated
``Idempotency-Key`` with the first answer. It records every request (path, form
fields, headers) for tests to assert on, and can be told to answer the next
requests with an error status or to stall before answering (timeouts).

It also builds what Stripe would then send: a completed or expired session, a
refund, a ``charge.refunded`` charge, an event around any of them, and the
``Stripe-Signature`` header of a delivery.

And it keeps a balance: tests plant balance transactions (a charge with Stripe's fee,
a refund, a Stripe fee, an adjustment) and pay them out in a payout
(``payout_plant``); the API then lists payouts (``created[gte]``) and the balance
transactions of a payout (``payout=``, ``expand[]=data.source``) in Stripe's list
shape, a page at a time (``limit``, ``starting_after``, ``has_more``), newest first.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "stripe"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def nested(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``) back into dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = [key.split("[", 1)[0], *re.findall(r"\[([^\]]*)\]", key)]
        node: Any = root
        for part, following in zip(parts, [*parts[1:], None], strict=True):
            slot: Any = int(part) if isinstance(node, list) else part
            if following is None:
                if isinstance(node, list):
                    node.extend([None] * (slot + 1 - len(node)))
                node[slot] = value
                break
            child: Any = [] if following.isdigit() else {}
            if isinstance(node, list):
                node.extend([None] * (slot + 1 - len(node)))
                node[slot] = node[slot] if node[slot] is not None else child
            else:
                node.setdefault(slot, child)
            node = node[slot]
    return root


def signature_header(payload: str, secret: str, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` as Stripe computes it: HMAC-SHA256 of "{t}.{payload}"."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    params: dict[str, Any]

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class Trouble:
    status: int = 0  # answer with this error status
    stall_seconds: float = 0.0  # or do the work and wait this long before answering
    times: int = 1


@dataclass
class State:
    requests: list[Recorded] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    replays: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    trouble: list[Trouble] = field(default_factory=list)
    # The balance: payouts newest last; each balance transaction with its source
    # (``_source``) and the payout it went out in (``_payout``).
    payouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    balance_transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    paid_out: dict[str, list[str]] = field(default_factory=dict)  # payout id → its txn ids


class StripeDouble:
    def __init__(self) -> None:
        self.state = State()
        self.lock = threading.Lock()
        self.counter = itertools.count(1)
        double = self

        class Handler(_Handler):
            stripe = double

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what tests tell it and read from it ------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self.lock:
            return list(self.state.requests)

    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        with self.lock:
            self.state.trouble.append(Trouble(status=status, times=times))

    def stall_next(self, seconds: float, times: int = 1) -> None:
        with self.lock:
            self.state.trouble.append(Trouble(stall_seconds=seconds, times=times))

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_test_{next(self.counter):06d}{int(time.time() * 1000) % 10**8:08d}"

    # -- what Stripe would send afterwards ---------------------------------------------

    def session_complete(self, session_id: str, *, payment_status: str = "paid") -> dict[str, Any]:
        """The family paid on Stripe's page (``unpaid``: a bank debit is on its way)."""
        with self.lock:
            session = self.state.sessions[session_id]
            if not session.get("payment_intent"):
                session["payment_intent"] = self._new_id("pi")
                session["_charge"] = self._new_id("ch")
            session["status"] = "complete"
            session["payment_status"] = payment_status
            return self.public(session)

    def session_paid_later(self, session_id: str) -> dict[str, Any]:
        with self.lock:
            self.state.sessions[session_id]["payment_status"] = "paid"
            return self.public(self.state.sessions[session_id])

    def session_expire(self, session_id: str) -> dict[str, Any]:
        with self.lock:
            self.state.sessions[session_id]["status"] = "expired"
            return self.public(self.state.sessions[session_id])

    def charge_of(self, session_id: str) -> str:
        return self.state.sessions[session_id]["_charge"]

    def refund_make(
        self,
        session_id: str,
        amount: int,
        *,
        status: str = "succeeded",
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A refund made in Stripe's dashboard (no metadata of ours)."""
        with self.lock:
            session = self.state.sessions[session_id]
            refund = copy.deepcopy(fixture("refund"))
            refund.update(
                id=self._new_id("re"),
                amount=amount,
                charge=session["_charge"],
                payment_intent=session["payment_intent"],
                status=status,
                metadata=metadata or {},
                created=int(time.time()),
            )
            self.state.refunds[refund["id"]] = refund
            return copy.deepcopy(refund)

    def refund_set(self, refund_id: str, status: str) -> dict[str, Any]:
        with self.lock:
            self.state.refunds[refund_id]["status"] = status
            return copy.deepcopy(self.state.refunds[refund_id])

    def charge_refunded(self, session_id: str, *, listed: bool = True) -> dict[str, Any]:
        """The charge of a session as ``charge.refunded`` carries it: its refunds
        listed (``listed=False``: not, as in recent API versions)."""
        with self.lock:
            session = self.state.sessions[session_id]
            charge = copy.deepcopy(fixture("charge"))
            refunds = [r for r in self.state.refunds.values() if r["charge"] == session["_charge"]]
            refunded = sum(r["amount"] for r in refunds if r["status"] == "succeeded")
            charge.update(
                id=session["_charge"],
                amount=session["amount_total"],
                amount_captured=session["amount_total"],
                amount_refunded=refunded,
                refunded=refunded >= session["amount_total"],
                payment_intent=session["payment_intent"],
                captured=True,
            )
            if listed:
                charge["refunds"] = {
                    "object": "list",
                    "data": copy.deepcopy(refunds),
                    "has_more": False,
                    "url": f"/v1/charges/{charge['id']}/refunds",
                }
            else:
                charge.pop("refunds", None)
            return charge

    def event(self, type_: str, obj: dict[str, Any], *, event_id: str | None = None) -> str:
        """The JSON body of a webhook delivery of ``obj``."""
        event = copy.deepcopy(fixture("event"))
        event.update(
            id=event_id or self._new_id("evt"),
            type=type_,
            created=int(time.time()),
            data={"object": obj},
            api_version="2025-01-27.acacia",
        )
        return json.dumps(event)

    # -- the balance: balance transactions and payouts -------------------------------------

    def _balance_transaction(
        self,
        *,
        type_: str,
        category: str,
        amount: int,
        fee: int,
        source: dict[str, Any] | None,
        description: str | None,
        created: int | None,
    ) -> dict[str, Any]:
        transaction = dict(_shape("balance_transaction"))
        transaction.update(
            id=self._new_id("txn"),
            type=type_,
            reporting_category=category,
            amount=amount,
            fee=fee,
            net=amount - fee,
            fee_details=(
                [
                    {
                        "amount": fee,
                        "application": None,
                        "currency": "usd",
                        "description": "Stripe processing fees",
                        "type": "stripe_fee",
                    }
                ]
                if fee
                else []
            ),
            created=int(time.time()) if created is None else created,
            available_on=int(time.time()) if created is None else created,
            description=description,
            source=source["id"] if source else None,
            _source=source,
            _payout=None,
        )
        with self.lock:
            self.state.balance_transactions[transaction["id"]] = transaction
        return transaction

    def charge_transaction(
        self,
        *,
        payment_intent: str,
        amount: int,
        fee: int = 0,
        metadata: dict[str, str] | None = None,
        charge_id: str | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """A payment's charge and its balance transaction (``fee``: Stripe's fee)."""
        charge = dict(_shape("charge"))
        charge.update(
            id=charge_id or self._new_id("ch"),
            amount=amount,
            amount_captured=amount,
            captured=True,
            paid=True,
            payment_intent=payment_intent,
            metadata=metadata or {},
            created=int(time.time()) if created is None else created,
        )
        return self._balance_transaction(
            type_="charge",
            category="charge",
            amount=amount,
            fee=fee,
            source=charge,
            description=None,
            created=created,
        )

    def refund_transaction(
        self,
        *,
        amount: int,
        payment_intent: str,
        charge: str = "",
        refund_id: str | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """A refund of ``amount`` cents and its (negative) balance transaction."""
        refund = dict(_shape("refund"))
        refund.update(
            id=refund_id or self._new_id("re"),
            amount=amount,
            charge=charge or None,
            payment_intent=payment_intent,
            status="succeeded",
            created=int(time.time()) if created is None else created,
        )
        return self._balance_transaction(
            type_="refund",
            category="refund",
            amount=-amount,
            fee=0,
            source=refund,
            description="REFUND FOR CHARGE",
            created=created,
        )

    def fee_transaction(
        self, *, amount: int, description: str = "Radar (2025-06)"
    ) -> dict[str, Any]:
        """A fee Stripe takes from the balance on its own (Radar, billing): ``amount``
        cents out."""
        return self._balance_transaction(
            type_="stripe_fee",
            category="fee",
            amount=-amount,
            fee=0,
            source=None,
            description=description,
            created=None,
        )

    def adjustment_transaction(
        self, *, amount: int, description: str, category: str = "other_adjustment"
    ) -> dict[str, Any]:
        """An adjustment of the balance (a dispute's withdrawal, a correction)."""
        return self._balance_transaction(
            type_="adjustment",
            category=category,
            amount=amount,
            fee=0,
            source=None,
            description=description,
            created=None,
        )

    def payout_plant(
        self,
        transactions: list[dict[str, Any]],
        *,
        status: str = "paid",
        created: int | None = None,
    ) -> dict[str, Any]:
        """Pay ``transactions`` out to the bank in one automatic payout: its amount is
        their net, and its own (negative) balance transaction joins them."""
        with self.lock:
            payout = dict(_shape("payout"))
            amount = sum(t["net"] for t in transactions)
            when = int(time.time()) if created is None else created
            payout.update(
                id=self._new_id("po"),
                amount=amount,
                created=when,
                arrival_date=when + 2 * 86400,
                status=status,
                automatic=True,
            )
        own = self._balance_transaction(
            type_="payout",
            category="payout",
            amount=-amount,
            fee=0,
            source=payout,
            description="STRIPE PAYOUT",
            created=when,
        )
        with self.lock:
            payout["balance_transaction"] = own["id"]
            ids = [t["id"] for t in transactions] + [own["id"]]
            for transaction_id in ids:
                self.state.balance_transactions[transaction_id]["_payout"] = payout["id"]
            # Stripe lists the newest first.
            ordered = sorted(
                ids,
                key=lambda i: self.state.balance_transactions[i]["created"],
                reverse=True,
            )
            self.state.paid_out[payout["id"]] = ordered
            self.state.payouts[payout["id"]] = payout
            return dict(payout)

    def balance_transactions_listed(self, payout_id: str, *, expand: bool) -> list[dict[str, Any]]:
        """The balance transactions of a payout as the API lists them, newest first."""
        with self.lock:
            return [
                _listed(self.state.balance_transactions[i], expand=expand)
                for i in self.state.paid_out.get(payout_id, [])
            ]

    def _payouts_answer(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        payouts = sorted(
            self.state.payouts.values(), key=lambda p: (p["created"], p["id"]), reverse=True
        )
        if "created[gte]" in query:
            payouts = [p for p in payouts if p["created"] >= int(query["created[gte]"])]
        if "created[lte]" in query:
            payouts = [p for p in payouts if p["created"] <= int(query["created[lte]"])]
        if query.get("status"):
            payouts = [p for p in payouts if p["status"] == query["status"]]
        return _page(payouts, query, url="/v1/payouts")

    def _balance_transactions_answer(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        payout_id = query.get("payout")
        if payout_id is not None and payout_id not in self.state.payouts:
            return _error(404, "invalid_request_error", f"No such payout: '{payout_id}'")
        transactions = self.state.balance_transactions
        if payout_id is not None:
            ordered = [transactions[i] for i in self.state.paid_out[payout_id]]
        else:
            ordered = sorted(transactions.values(), key=lambda t: t["created"], reverse=True)
        expand = any(
            key.startswith("expand[") and value == "data.source" for key, value in query.items()
        )
        status, page = _page(ordered, query, url="/v1/balance_transactions")
        if status == 200:
            page["data"] = [_listed(t, expand=expand) for t in page["data"]]
        return status, page

    @staticmethod
    def public(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}

    # -- the API ------------------------------------------------------------------------

    def answer(self, recorded: Recorded) -> tuple[int, dict[str, Any]]:
        method, path = recorded.method, recorded.path
        if method == "POST" and path == "/v1/checkout/sessions":
            return 200, self._session_create(recorded.params)
        match = re.fullmatch(r"/v1/checkout/sessions/([^/]+)(/expire)?", path)
        if match:
            session = self.state.sessions.get(match.group(1))
            if session is None:
                return _error(404, "invalid_request_error", "No such checkout.session")
            if match.group(2) and method == "POST":
                if session["status"] != "open":
                    return _error(400, "invalid_request_error", "Session is not open")
                session["status"] = "expired"
            return 200, self.public(session)
        if method == "POST" and path == "/v1/refunds":
            return self._refund_create(recorded.params)
        if method == "GET" and path == "/v1/refunds":
            charge = recorded.query.get("charge")
            data = [copy.deepcopy(r) for r in self.state.refunds.values() if r["charge"] == charge]
            return 200, {"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"}
        if method == "GET" and path == "/v1/payouts":
            return self._payouts_answer(recorded.query)
        match = re.fullmatch(r"/v1/payouts/([^/]+)", path)
        if method == "GET" and match:
            payout = self.state.payouts.get(match.group(1))
            if payout is None:
                return _error(404, "invalid_request_error", "No such payout")
            return 200, dict(payout)
        if method == "GET" and path == "/v1/balance_transactions":
            return self._balance_transactions_answer(recorded.query)
        return _error(404, "invalid_request_error", f"Unrecognized request URL ({path})")

    def _session_create(self, params: dict[str, Any]) -> dict[str, Any]:
        session = copy.deepcopy(fixture("checkout.session"))
        items = params.get("line_items", [])
        total = sum(
            int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1)) for item in items
        )
        session_id = self._new_id("cs")
        session.update(
            id=session_id,
            amount_total=total,
            amount_subtotal=total,
            currency=items[0]["price_data"]["currency"] if items else "usd",
            client_reference_id=params.get("client_reference_id"),
            metadata=params.get("metadata", {}),
            expires_at=int(params.get("expires_at", time.time() + 86400)),
            success_url=params.get("success_url"),
            cancel_url=params.get("cancel_url"),
            customer_email=params.get("customer_email"),
            payment_intent=None,
            payment_status="unpaid",
            status="open",
            created=int(time.time()),
            url=f"{self.base_url}/pay/{session_id}",
            shipping_cost=None,
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        )
        session["_line_items"] = items
        self.state.sessions[session_id] = session
        return self.public(session)

    def _refund_create(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        session = next(
            (
                s
                for s in self.state.sessions.values()
                if s.get("payment_intent") == params.get("payment_intent")
            ),
            None,
        )
        if session is None:
            return _error(400, "invalid_request_error", "No such payment_intent")
        refund = copy.deepcopy(fixture("refund"))
        refund.update(
            id=self._new_id("re"),
            amount=int(params["amount"]),
            charge=session["_charge"],
            payment_intent=session["payment_intent"],
            metadata=params.get("metadata", {}),
            status="pending",
            created=int(time.time()),
        )
        self.state.refunds[refund["id"]] = refund
        return 200, copy.deepcopy(refund)


@functools.cache
def _shape_of(name: str) -> dict[str, Any]:
    return fixture(name)


def _shape(name: str) -> dict[str, Any]:
    """A fresh top level of a published object; its nested values are shared and
    never changed (a long list is built quickly)."""
    return dict(_shape_of(name))


def _listed(transaction: dict[str, Any], *, expand: bool) -> dict[str, Any]:
    listed = {k: v for k, v in transaction.items() if not k.startswith("_")}
    if expand and transaction["_source"] is not None:
        listed["source"] = transaction["_source"]
    return listed


def _page(
    ordered: list[dict[str, Any]], query: dict[str, str], *, url: str
) -> tuple[int, dict[str, Any]]:
    """One page of a list, as Stripe pages it: ``limit`` (1 to 100, 10 by default)
    items after ``starting_after``."""
    limit = int(query.get("limit", 10))
    if not 1 <= limit <= 100:
        return _error(400, "invalid_request_error", "limit must be between 1 and 100")
    start = 0
    after = query.get("starting_after")
    if after:
        positions = [i for i, item in enumerate(ordered) if item["id"] == after]
        if not positions:
            return _error(400, "invalid_request_error", f"No such object: '{after}'")
        start = positions[0] + 1
    data = ordered[start : start + limit]
    return 200, {
        "object": "list",
        "data": data,
        "has_more": start + limit < len(ordered),
        "url": url,
    }


def _error(status: int, kind: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"type": kind, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    stripe: StripeDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        double = self.stripe
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        recorded = Recorded(
            method=method,
            path=parts.path,
            query=dict(parse_qsl(parts.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            params=nested(parse_qsl(body, keep_blank_values=True)),
        )
        stall = 0.0
        with double.lock:
            double.state.requests.append(recorded)
            trouble = double.state.trouble[0] if double.state.trouble else None
            if trouble is not None:
                trouble.times -= 1
                if trouble.times <= 0:
                    double.state.trouble.pop(0)
            if trouble is not None and trouble.status:
                status, answer = _error(trouble.status, "api_error", "Something went wrong.")
            else:
                stall = trouble.stall_seconds if trouble is not None else 0.0
                key = recorded.idempotency_key
                replay = f"{method} {parts.path} {key}"
                if key and replay in double.state.replays:
                    status, answer = double.state.replays[replay]
                else:
                    status, answer = double.answer(recorded)
                    if key and method == "POST":
                        double.state.replays[replay] = (status, answer)
        if stall:
            time.sleep(stall)  # the work is done; the answer is late
        data = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_double_{len(double.state.requests)}")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

"""Outbound payment and refund notifies on WeChat's retry schedule, with fault injection."""

import asyncio
import logging
from typing import Optional

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tornpay.protocol.xmlcodec import XMLError, decode_xml, encode_xml
from tornpay.simulator.notifyfields import VARIANTS, payment_notify_fields  # noqa: F401
from tornpay.simulator.records import Attempt, Order, Refund, dashed_time
from tornpay.simulator.refundcipher import encrypt_req_info

log = logging.getLogger(__name__)

REPLY_SNIPPET = 300


def refund_notify_fields(state, refund: Refund) -> dict:
    """The §12 refund notify: unsigned outer XML around the encrypted req_info."""
    inner = {
        "out_refund_no": refund.out_refund_no, "out_trade_no": refund.out_trade_no,
        "refund_account": refund.refund_account, "refund_fee": refund.refund_fee,
        "refund_id": refund.refund_id, "refund_recv_accout": refund.recv_accout,
        "refund_request_source": "API", "refund_status": refund.status,
        "settlement_refund_fee": refund.refund_fee, "settlement_total_fee": refund.total_fee,
        "total_fee": refund.total_fee, "transaction_id": refund.transaction_id,
    }
    if refund.success_at:
        inner["success_time"] = dashed_time(refund.success_at)
    key = state.config.merchant(refund.mch_id).api_key
    return {
        "return_code": "SUCCESS", "appid": refund.appid, "mch_id": refund.mch_id,
        "nonce_str": state.nonce(), "req_info": encrypt_req_info(inner, key),
    }


class Notifier:
    """Runs one delivery job per notify: attempt, then retry per schedule × time_scale."""

    def __init__(self, state):
        self.state = state
        self._client: Optional[AsyncHTTPClient] = None
        self._tasks: set = set()

    @property
    def client(self) -> AsyncHTTPClient:
        if self.state.config.http_client is not None:
            return self.state.config.http_client
        if self._client is None:
            self._client = AsyncHTTPClient(force_instance=True)
        return self._client

    def notify_payment(self, order: Order) -> Optional["asyncio.Future"]:
        """Start delivering the payment notify; returns a future set after the first attempt."""
        faults = self.state.faults
        if self._dropped("payment", order):
            return None
        if order.api == "v3":
            from tornpay.simulator.v3.notify import payment_notify
            body, headers = payment_notify(
                self.state, order, wrong_total_fee=bool(faults.fire("notify_wrong_total_fee")),
                bad_sign=bool(faults.fire("notify_bad_sign")))
            return self._start("payment", order, order.notify_url, body, headers)
        fields = payment_notify_fields(
            self.state, order,
            wrong_total_fee=bool(faults.fire("notify_wrong_total_fee")),
            bad_sign=bool(faults.fire("notify_bad_sign")),
            variants=[name for name in VARIANTS if faults.fire(name)],
        )
        return self._start("payment", order, order.notify_url, encode_xml(fields))

    def notify_refund(self, refund: Refund) -> Optional["asyncio.Future"]:
        if not refund.notify_url:
            return None  # WeChat sends nothing without a refund notify URL
        if self._dropped("refund", refund):
            return None
        if refund.api == "v3":
            from tornpay.simulator.v3.notify import refund_notify
            body, headers = refund_notify(self.state, refund)
            return self._start("refund", refund, refund.notify_url, body, headers)
        body = encode_xml(refund_notify_fields(self.state, refund))
        return self._start("refund", refund, refund.notify_url, body)

    def _dropped(self, kind: str, record) -> bool:
        if not self.state.faults.fire("notify_drop"):
            return False
        record.notify_status = "dropped"
        self._record(kind, record, Attempt(n=0, at=self.state.now(), dropped=True))
        log.info("simulator: fault notify_drop, %s notify for %s not sent", kind,
                 record.out_trade_no)
        return True

    def _start(self, kind: str, record, url: str, body: bytes,
               headers: Optional[dict] = None) -> "asyncio.Future":
        record.notify_status = "pending"
        first = asyncio.get_running_loop().create_future()
        duplicate = bool(self.state.faults.fire("notify_duplicate"))
        task = asyncio.ensure_future(self._run(kind, record, url, (body, headers), first,
                                               duplicate))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return first

    async def _run(self, kind, record, url, body, first, duplicate) -> None:
        schedule = self.state.config.notify_schedule
        n = 0
        try:
            while True:
                n += 1
                if duplicate and n == 1:
                    # Two WeChat servers deliver the same notify at once (pitfall P14).
                    results = await asyncio.gather(
                        self._attempt(kind, record, url, body, n, False),
                        self._attempt(kind, record, url, body, n, True),
                    )
                    ok = any(results)
                else:
                    ok = await self._attempt(kind, record, url, body, n, False)
                if not first.done():
                    first.set_result(ok)
                if ok:
                    record.notify_status = "delivered"
                    return
                if n > len(schedule):
                    record.notify_status = "gave_up"
                    return
                await asyncio.sleep(schedule[n - 1] * self.state.config.time_scale)
        finally:
            if not first.done():
                first.cancel()

    async def _attempt(self, kind, record, url, message, n, duplicate) -> bool:
        body, headers = message  # headers: a v3 notify's signed ones; None for v2 XML
        attempt = Attempt(n=n, at=self.state.now(), duplicate=duplicate)
        self._record(kind, record, attempt)
        timeout = self.state.config.notify_timeout
        request = HTTPRequest(
            url, method="POST", body=body,
            headers=headers or {"Content-Type": "text/xml; charset=utf-8"},
            connect_timeout=timeout, request_timeout=timeout, follow_redirects=False,
        )
        try:
            response = await self.client.fetch(request, raise_error=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any transport failure is a failed delivery
            attempt.error = f"{type(exc).__name__}: {exc}"
            return False
        attempt.status = response.code
        text = (response.body or b"").decode("utf-8", "replace")
        attempt.reply = text[:REPLY_SNIPPET]
        if response.error and not response.body:
            attempt.error = str(response.error)
        # v3: the HTTP status alone decides (200/204, reference v3 §15.3); v2: return_code.
        attempt.ok = 200 <= response.code < 300 and (
            headers is not None or _is_success_reply(response.body or b""))
        log.info("simulator: %s notify #%d to %s -> %s ok=%s", kind, n, url, response.code,
                 attempt.ok)
        return attempt.ok

    def _record(self, kind: str, record, attempt: Attempt) -> None:
        record.notifies.append(attempt)
        entry = {"kind": kind, "out_trade_no": record.out_trade_no}
        if isinstance(record, Refund):
            entry["out_refund_no"] = record.out_refund_no
        entry["attempt"] = attempt
        self.state.notify_log.append(entry)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def wait_idle(self) -> None:
        """Wait until every delivery job has finished or been cancelled."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def close(self) -> None:
        self.cancel_all()
        if self._client is not None:
            self._client.close()
            self._client = None


def _is_success_reply(body: bytes) -> bool:
    try:
        return decode_xml(body).get("return_code") == "SUCCESS"
    except XMLError:
        return False

"""SimulatorState: orders, prepay_ids, refunds, OAuth codes, notify log, clock, ids and faults."""

import hashlib
import logging
import random
import string
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from tornado.ioloop import IOLoop

from tornpay.simulator.config import SimulatorConfig  # noqa: F401  (re-exported)
from tornpay.simulator.faults import Faults
from tornpay.simulator.notifier import Notifier
from tornpay.simulator.notifyfields import coupon_fee_for
from tornpay.simulator.oauthtokens import TokenStore
from tornpay.simulator.records import (
    CODE_TTL, PREPAY_TTL, Order, Refund, compact_time,
)

logger = logging.getLogger(__name__)

_ALNUM = string.ascii_letters + string.digits


class SimulatorError(Exception):
    """A business refusal: `err_code` and `err_code_des` as WeChat would answer."""

    def __init__(self, err_code: str, err_code_des: str):
        super().__init__(f"{err_code}: {err_code_des}")
        self.err_code = err_code
        self.err_code_des = err_code_des


@dataclass
class OAuthCode:
    code: str
    appid: str
    openid: str
    scope: str
    issued_at: float
    used: bool = False


class SimulatorState:
    """All simulator state, in memory; one per simulator application."""

    def __init__(self, config: SimulatorConfig):
        self.config = config
        # Seeded runs make nonces and ids reproducible (reference §16.6).
        self.rng = random.Random(config.seed) if config.seed is not None else random.SystemRandom()
        self.faults = Faults(self.rng)
        self._offset = 0.0
        self.orders: Dict[Tuple[str, str], Order] = {}
        self.prepay: Dict[str, Tuple[str, str]] = {}
        self.refunds: Dict[Tuple[str, str], Refund] = {}
        self.codes: Dict[str, OAuthCode] = {}
        self.tokens = TokenStore()
        self.warned_notify_urls: set = set()  # logged once each (bounded)
        self.notify_log: List[dict] = []
        self._timers: list = []
        self.notifier = Notifier(self)
        self.h5native: Optional[Any] = None  # h5native.H5NativeBook, made on first use
        # v3 bill download tokens: token -> (file bytes, expiry in simulator time).
        self.v3_bill_tokens: Dict[str, Tuple[bytes, float]] = {}

    # -- clock -------------------------------------------------------------
    def now(self) -> float:
        """Simulator time (epoch seconds): real time plus whatever tests advanced."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        self._offset += float(seconds)
        return self.now()

    def set_now(self, epoch: float) -> float:
        self._offset = float(epoch) - time.time()
        return self.now()

    # -- ids (methods so tests can pin them to reference values) -------------
    def _digits(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    def nonce(self) -> str:
        return "".join(self.rng.choice(_ALNUM) for _ in range(16))

    def new_prepay_id(self) -> str:
        hexpart = "".join(self.rng.choice("0123456789abcdef") for _ in range(22))
        return "wx" + compact_time(self.now())[6:] + hexpart + "0000"

    def new_transaction_id(self) -> str:
        # 28 digits: 10-digit channel prefix, Beijing date, 10 random digits.
        return "42000" + self._digits(5) + compact_time(self.now())[:8] + self._digits(10)

    def new_refund_id(self) -> str:
        # 29 digits, shaped like real refund ids.
        return "50300" + self._digits(5) + compact_time(self.now())[:8] + self._digits(11)

    def new_code(self) -> str:
        return "".join(self.rng.choice(_ALNUM) for _ in range(32))

    def sandbox_key(self, mch_id: str) -> Optional[str]:
        """The /sandboxnew/ signing key for a merchant (derived, stable per key)."""
        merchant = self.config.merchant(mch_id)
        if merchant is None:
            return None
        return hashlib.md5(("sandbox:" + merchant.api_key).encode()).hexdigest()

    # -- lookups -----------------------------------------------------------
    def order(self, mch_id: str, out_trade_no: str = "",
              transaction_id: str = "") -> Optional[Order]:
        if transaction_id:
            for order in self.orders.values():
                if order.mch_id == mch_id and order.transaction_id == transaction_id:
                    return order
            return None
        return self.orders.get((mch_id, out_trade_no))

    def find_order(self, out_trade_no: str = "", prepay_id: str = "") -> Optional[Order]:
        """Control-API lookup across merchants, by out_trade_no or any prepay_id it had."""
        if prepay_id:
            key = self.prepay.get(prepay_id)
            return self.orders.get(key) if key else None
        for order in self.orders.values():
            if order.out_trade_no == out_trade_no:
                return order
        return None

    def refunds_of(self, order: Order) -> List[Refund]:
        return [self.refunds[(order.mch_id, no)] for no in order.refunds]

    def find_refund(self, out_refund_no: str = "", refund_id: str = "") -> Optional[Refund]:
        for refund in self.refunds.values():
            if (out_refund_no and refund.out_refund_no == out_refund_no) or (
                refund_id and refund.refund_id == refund_id
            ):
                return refund
        return None

    # -- transitions -------------------------------------------------------
    def issue_prepay(self, order: Order) -> str:
        order.prepay_id = self.new_prepay_id()
        order.prepay_expires_at = self.now() + PREPAY_TTL
        self.prepay[order.prepay_id] = (order.mch_id, order.out_trade_no)
        return order.prepay_id

    def pay(self, order: Order, result: str = "SUCCESS", notify: bool = True) -> Order:
        """The user paid (or the payment failed); a success schedules the notify."""
        if order.trade_state in ("SUCCESS", "REFUND"):
            raise SimulatorError("ORDERPAID", "该订单已支付")
        if order.trade_state == "CLOSED":
            raise SimulatorError("ORDERCLOSED", "该订单已关闭")
        if order.trade_state != "NOTPAY":
            raise SimulatorError("TRADE_STATE_ERROR", f"订单状态为{order.trade_state}")
        if result == "PAYERROR":
            order.trade_state = "PAYERROR"
            return order
        now = self.now()
        order.trade_state = "SUCCESS"
        order.transaction_id = self.new_transaction_id()
        order.time_end = compact_time(now)
        order.paid_at = now
        user = self.config.user(order.openid)
        order.is_subscribe = user.is_subscribe if user else "N"
        if self.faults.fire("notify_coupon"):
            order.coupon_fee = coupon_fee_for(order.total_fee)
        logger.info("simulator: order %s paid (%s fen)", order.out_trade_no, order.total_fee)
        if notify:
            self.notifier.notify_payment(order)
        return order

    def add_refund(self, refund: Refund) -> Refund:
        self.refunds[(refund.mch_id, refund.out_refund_no)] = refund
        order = self.orders[(refund.mch_id, refund.out_trade_no)]
        order.refunds.append(refund.out_refund_no)
        order.trade_state = "REFUND"
        delay = self.config.refund_delay_seconds
        if delay is not None:
            self.call_later(delay * self.config.time_scale, self._auto_finish, refund)
        return refund

    def _auto_finish(self, refund: Refund) -> None:
        if refund.status == "PROCESSING":
            self.finish_refund(refund, "SUCCESS")

    def settle_due_refunds(self) -> None:
        """Finish refunds whose delay has passed on the (possibly advanced) clock."""
        delay = self.config.refund_delay_seconds
        if delay is None:
            return
        for refund in list(self.refunds.values()):
            if refund.status == "PROCESSING" and self.now() >= refund.created_at + delay:
                self.finish_refund(refund, "SUCCESS")

    def finish_refund(self, refund: Refund, status: str = "SUCCESS") -> Refund:
        if status not in ("SUCCESS", "CHANGE", "REFUNDCLOSE"):
            raise ValueError("refund status must be SUCCESS, CHANGE or REFUNDCLOSE")
        if refund.status != "PROCESSING":
            raise SimulatorError("TRADE_STATE_ERROR", f"退款状态为{refund.status}")
        refund.status = status
        if status == "SUCCESS":
            refund.success_at = self.now()
        logger.info("simulator: refund %s finished %s", refund.out_refund_no, status)
        self.notifier.notify_refund(refund)
        return refund

    # -- OAuth codes -------------------------------------------------------
    def issue_code(self, appid: str, openid: str, scope: str = "snsapi_base") -> str:
        code = self.new_code()
        self.codes[code] = OAuthCode(code, appid, openid, scope, self.now())
        return code

    def use_code(self, code: str, appid: str) -> OAuthCode:
        """Consume a code: 40029 unknown/expired/other appid, 40163 already used."""
        entry = self.codes.get(code)
        if entry is None or entry.appid != appid or self.now() - entry.issued_at > CODE_TTL:
            raise SimulatorError("40029", "invalid code")
        if entry.used:
            raise SimulatorError("40163", "code been used")
        entry.used = True
        return entry

    # -- housekeeping ------------------------------------------------------
    def call_later(self, delay: float, callback, *args) -> None:
        self._timers.append(IOLoop.current().call_later(max(0.0, delay), callback, *args))

    def reset(self) -> None:
        """Forget every order, refund, code and fault (control API, between demo runs)."""
        self.notifier.cancel_all()
        self._cancel_timers()
        self.orders.clear()
        self.prepay.clear()
        self.refunds.clear()
        self.codes.clear()
        self.tokens.clear()
        self.notify_log.clear()
        self.faults.clear()
        self.h5native = None  # NATIVE codes and MWEB launches of the forgotten orders
        self.v3_bill_tokens.clear()

    def _cancel_timers(self) -> None:
        loop = IOLoop.current()
        for handle in self._timers:
            loop.remove_timeout(handle)
        self._timers.clear()

    def close(self) -> None:
        """Cancel pending notifies and timers; close the HTTP client if we made it."""
        self.notifier.close()
        self._cancel_timers()

    def start(self) -> None:
        """Nothing to start: timers and deliveries begin on demand (Context calls this)."""

    async def stop(self) -> None:
        """Context.stop() hook: cancel deliveries and close the notify client."""
        await self.aclose()

    async def aclose(self) -> None:
        """close(), then let the cancelled deliveries unwind (clean test teardown)."""
        self.notifier.cancel_all()
        self._cancel_timers()
        await self.notifier.wait_idle()
        self.notifier.close()

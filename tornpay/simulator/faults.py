"""Fault switches tests flip to make the simulator misbehave the way WeChat sometimes does."""

import random
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional

from tornpay.simulator.notifyfields import VARIANTS
from tornpay.simulator.v3.faultnames import V3_FAULTS

# name -> what it does when it fires
FAULTS = {
    "latency": "sleep `seconds` (non-blocking) before answering an API call",
    "systemerror": "answer result_code FAIL, err_code SYSTEMERROR (signed)",
    "notenough": "refund answers err_code NOTENOUGH (merchant balance too low)",
    "reply_unsigned": "answer a business reply without a sign element",
    "reply_bad_sign": "answer a business reply with a wrong sign",
    "reply_non_xml": "answer an HTML error page instead of XML",
    "notify_drop": "never deliver the notify (the merchant must query)",
    "notify_duplicate": "deliver every attempt twice, concurrently",
    "notify_before_reply": "pay the order and deliver the notify before the unifiedorder reply",
    "notify_wrong_total_fee": "notify with total_fee + 1, correctly signed",
    "notify_bad_sign": "notify with a wrong signature",
    "notify_coupon": "the payer uses a ~10% non-recharge coupon: notify and orderquery carry "
                     "coupon_fee, coupon_count, coupon_*_0, settlement_total_fee and "
                     "cash_fee < total_fee (orders of 2 fen or more)",
    "bridge_ok_early": "the cashier answers get_brand_wcpay_request:ok at once but the payment "
                       "lands `seconds` later: until then orderquery says NOTPAY and no notify "
                       "is sent",
}
FAULTS.update(VARIANTS)
FAULTS.update(V3_FAULTS)


@dataclass
class FaultSwitch:
    """One armed fault; fires `count` times (None = until cleared) with `probability`."""

    name: str
    count: Optional[int] = None
    probability: float = 1.0
    endpoint: Optional[str] = None  # API name (unifiedorder, refund, ...) or None for all
    seconds: float = 0.0  # for latency

    def to_dict(self) -> dict:
        return asdict(self)


class Faults:
    """The set of armed switches; `fire(name, endpoint)` consumes one shot when it triggers."""

    def __init__(self, rng: Optional[random.Random] = None):
        self._rng = rng or random.Random()
        self._switches: List[FaultSwitch] = []

    def set(self, name: str, count: Optional[int] = None, probability: float = 1.0,
            endpoint: Optional[str] = None, seconds: float = 0.0) -> FaultSwitch:
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
        if count is not None and count < 1:
            raise ValueError("count must be >= 1 (or null for unlimited)")
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within 0..1")
        switch = FaultSwitch(name, count, float(probability), endpoint, float(seconds))
        # One switch per (name, endpoint): setting again replaces it.
        self.clear(name, endpoint, exact=True)
        self._switches.append(switch)
        return switch

    def clear(self, name: Optional[str] = None, endpoint: Optional[str] = None,
              exact: bool = False) -> None:
        def keep(s: FaultSwitch) -> bool:
            if name is not None and s.name != name:
                return True
            if exact or endpoint is not None:
                return s.endpoint != endpoint
            return False

        self._switches = [s for s in self._switches if keep(s)]

    def fire(self, name: str, endpoint: Optional[str] = None) -> Optional[FaultSwitch]:
        """Return the switch if fault `name` triggers now for `endpoint` (consuming a shot)."""
        for switch in list(self._switches):
            if switch.name != name or switch.endpoint not in (None, endpoint):
                continue
            if switch.probability < 1.0 and self._rng.random() >= switch.probability:
                return None
            if switch.count is not None:
                switch.count -= 1
                if switch.count <= 0:
                    self._switches.remove(switch)
            return switch
        return None

    def latency(self, endpoint: str) -> float:
        switch = self.fire("latency", endpoint)
        return switch.seconds if switch else 0.0

    def to_list(self) -> List[Dict]:
        return [s.to_dict() for s in self._switches]

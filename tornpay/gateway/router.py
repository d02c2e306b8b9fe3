"""Which gateway serves an order: the generation it was made in; new orders: the settings'."""

import inspect
import logging
from typing import Any, Callable, Optional

from tornpay.gateway.base import GatewayUnavailable

logger = logging.getLogger(__name__)


class Gateways:
    """The configured gateways (v2 always, v3 when its keys are set) and the current one."""

    def __init__(self, v2: Any, v3: Optional[Any] = None, current: str = "v2",
                 generation_of: Optional[Callable[[str], Any]] = None):
        self._by_generation = {"v2": v2, "v3": v3}
        self.current_generation = current
        # The core's answer to "which generation is this order in" (the gateway reads no
        # database: the composition hands it orders/trade_state.order_generation, in the
        # server a coroutine function that reads it on a database reader thread).
        self._generation_of = generation_of or (lambda out_trade_no: None)

    def get(self, generation: str) -> Optional[Any]:
        return self._by_generation.get(generation)

    def of(self, generation: str) -> Any:
        gateway = self._by_generation.get(generation or "v2")
        if gateway is None:
            raise GatewayUnavailable(f"no WeChat Pay API {generation} gateway is configured "
                                     f"(set the wechat.* keys of {generation})")
        return gateway

    @property
    def current(self) -> Any:
        """The gateway new orders are made with (wechat.api_version)."""
        return self.of(self.current_generation)

    def for_order(self, order: Any) -> Any:
        """The gateway of the generation ``order`` began in: it finishes in it (SPEC §10)."""
        return self.of(getattr(order, "api_version", None) or "v2")

    # The reconciler's calls, routed by the order's generation.
    async def order_query(self, out_trade_no: str, sign_type: Optional[str] = None,
                          appid: Optional[str] = None) -> dict:
        gateway = await self._by_no(out_trade_no)
        return await gateway.order_query(out_trade_no, sign_type, appid)

    async def close_order(self, out_trade_no: str, sign_type: Optional[str] = None,
                          appid: Optional[str] = None) -> None:
        gateway = await self._by_no(out_trade_no)
        await gateway.close_order(out_trade_no, sign_type, appid)

    async def _by_no(self, out_trade_no: str) -> Any:
        generation = self._generation_of(out_trade_no)
        if inspect.isawaitable(generation):
            generation = await generation
        return self.of(generation or self.current_generation)


def build_gateways(settings: Any, pay_client: Any, http_client: Any, observer: Any = None,
                   generation_of: Optional[Callable[[str], Any]] = None) -> Gateways:
    """v2 from the PayClient; v3 when its keys check out (required with api_version v3)."""
    from tornpay.gateway.v2 import V2Gateway
    from tornpay.gateway.v3settings import load_v3

    v3 = None
    creds = load_v3(settings)
    if creds is not None:
        from tornpay.gateway.v3 import V3Gateway
        from tornpay.protocol.client import wechat_urls
        from tornpay.protocol.v3.client import V3Client

        client = V3Client(mchid=creds.mchid, serial_no=creds.serial_no,
                          private_key=creds.private_key, apiv3_key=creds.apiv3_key,
                          keys=creds.keys, base_url=wechat_urls(settings)["pay_api_base"],
                          http_client=http_client, timeout=settings.wechat.timeout,
                          observer=observer)
        v3 = V3Gateway(client, settings, creds)
    return Gateways(V2Gateway(pay_client, settings), v3, settings.wechat.api_version,
                    generation_of)

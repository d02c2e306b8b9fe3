"""Shared fixtures and helpers for the simulator tests (reference test credentials, receivers)."""

import asyncio
import json
from typing import Callable, List, Optional, Tuple

import pytest
import tornado.web

from tornpay.protocol.sign import MD5, make_sign, verify_sign
from tornpay.protocol.xmlcodec import decode_xml, encode_xml
from tornpay.simulator.app import make_simulator_app
from tornpay.simulator.clientcert import TEST_CERT, TEST_KEY
from tornpay.simulator.config import SimulatorConfig
from tornpay.simulator.state import SimulatorState

# The reference document's test credentials (not real ones).
APPID = "wxd930ea5d5a258f4f"
MCH_ID = "10000100"
API_KEY = "192006250b4c09247ec02edce69f6a2d"
APP_SECRET = "simsecret0123456789abcdef0123456"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
SUCCESS_REPLY = (b"<xml><return_code><![CDATA[SUCCESS]]></return_code>"
                 b"<return_msg><![CDATA[OK]]></return_msg></xml>")
FAIL_REPLY = (b"<xml><return_code><![CDATA[FAIL]]></return_code>"
              b"<return_msg><![CDATA[busy]]></return_msg></xml>")


def make_config(**kwargs) -> SimulatorConfig:
    kwargs.setdefault("time_scale", 0.001)
    kwargs.setdefault("refund_delay_seconds", None)
    # The merchant presents the shipped TEST-ONLY client certificate (refunds demand one).
    kwargs.setdefault("client_cert_file", TEST_CERT)
    kwargs.setdefault("client_key_file", TEST_KEY)
    return SimulatorConfig.single(APPID, APP_SECRET, MCH_ID, API_KEY, **kwargs)


class Box:
    """What the merchant-side receiver got, and the replies it should give, in order."""

    def __init__(self):
        self.received: List[Tuple[str, bytes]] = []
        self.replies: List[object] = []  # bytes, or (status, bytes), or a float delay

    def bodies(self, name: str) -> List[dict]:
        return [decode_xml(body) for n, body in self.received if n == name]


class Receiver(tornado.web.RequestHandler):
    """A stand-in merchant notify endpoint mounted in the test application."""

    def initialize(self, box: Box) -> None:
        self.box = box

    async def post(self, name: str) -> None:
        self.box.received.append((name, self.request.body))
        reply = self.box.replies.pop(0) if self.box.replies else SUCCESS_REPLY
        if isinstance(reply, float):
            await asyncio.sleep(reply)
            reply = SUCCESS_REPLY
        status = 200
        if isinstance(reply, tuple):
            status, reply = reply
        self.set_status(status)
        self.finish(reply)


def signed(params: dict, key: str = API_KEY, sign_type: str = MD5) -> bytes:
    fields = dict(params)
    if sign_type != MD5:
        fields["sign_type"] = sign_type
    fields["sign"] = make_sign(fields, key, sign_type)
    return encode_xml(fields)


class Sim:
    """Talks to the simulator under test over loopback HTTP."""

    def __init__(self, http_client, base: str, state: SimulatorState, box: Box):
        self.client = http_client
        self.base = base
        self.state = state
        self.box = box
        self._n = 0

    def notify_url(self, name: str = "pay") -> str:
        return f"{self.base}/merchant/{name}"

    def order_params(self, out_trade_no: Optional[str] = None, **over) -> dict:
        self._n += 1
        params = {
            "appid": APPID, "mch_id": MCH_ID, "nonce_str": f"n{self._n}x",
            "body": "Coaching-1h", "out_trade_no": out_trade_no or f"T{self._n:08d}",
            "total_fee": "100", "spbill_create_ip": "127.0.0.1",
            "notify_url": self.notify_url(), "trade_type": "JSAPI", "openid": OPENID,
        }
        params.update(over)
        return {k: v for k, v in params.items() if v is not None}

    async def raw(self, path: str, body: bytes, method: str = "POST"):
        return await self.client.fetch(self.base + path, method=method,
                                       body=body if method == "POST" else None, raise_error=False)

    async def api(self, path: str, params: dict, key: str = API_KEY, sign_type: str = MD5,
                  verify: bool = True) -> dict:
        response = await self.raw(path, signed(params, key, sign_type))
        assert response.code == 200
        reply = decode_xml(response.body)
        if verify and reply["return_code"] == "SUCCESS":
            assert "sign_type" not in reply
            assert verify_sign(reply, key, sign_type), reply
        return reply

    async def order(self, **over) -> dict:
        params = self.order_params(**over)
        reply = await self.api("/pay/unifiedorder", params)
        assert reply["result_code"] == "SUCCESS", reply
        return dict(params, prepay_id=reply["prepay_id"])

    async def control(self, path: str, data: Optional[dict] = None, method: str = "POST"):
        body = json.dumps(data or {}) if method == "POST" else None
        response = await self.client.fetch(self.base + "/control/" + path, method=method,
                                           body=body, raise_error=False,
                                           allow_nonstandard_methods=True)
        return response.code, json.loads(response.body)

    async def paid_order(self, **over) -> dict:
        order = await self.order(**over)
        code, _ = await self.control("pay", {"out_trade_no": order["out_trade_no"]})
        assert code == 200
        return order


async def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


@pytest.fixture
def box():
    return Box()


@pytest.fixture
def sim_config(http_port):
    return make_config(pay_directories=[f"http://127.0.0.1:{http_port}/shop/pay/"])


@pytest.fixture
def state(io_loop, sim_config):
    sim_state = SimulatorState(sim_config)
    yield sim_state
    io_loop.run_sync(sim_state.aclose)


def simulator_app(state, receiver, box):
    """The simulator's app plus /merchant/<name>, where ``receiver`` keeps what it gets in
    ``box`` (the merchant's notify endpoint, played by the test)."""
    application = make_simulator_app(state)
    application.add_handlers(".*", [(r"/merchant/(\w+)", receiver, {"box": box})])
    return application


@pytest.fixture
def app(state, box):
    return simulator_app(state, Receiver, box)


@pytest.fixture
def sim(http_client, http_port, state, box):
    return Sim(http_client, f"http://127.0.0.1:{http_port}", state, box)

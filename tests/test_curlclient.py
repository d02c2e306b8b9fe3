"""The WeChat HTTP client: its cap comes from the settings, handles are made as calls need them."""

import asyncio

import pytest
import tornado.web

from tornpay.curlclient import LeanCurlClient
from tornpay.startup import make_http_client

HELD = 6  # calls the test server holds open at once before answering any


class Gate(tornado.web.RequestHandler):
    """Answers each POST with its body's length once HELD calls are waiting (or at release)."""

    def initialize(self, waiting, release):
        self.waiting, self.release = waiting, release

    async def post(self):
        self.waiting.append(len(self.request.body))
        if len(self.waiting) >= HELD:
            self.release.set()
        await self.release.wait()
        self.write(str(len(self.request.body)))


@pytest.fixture
def gate():
    return {"waiting": [], "release": asyncio.Event()}


@pytest.fixture
def app(gate):
    return tornado.web.Application([(r"/", Gate, gate)])


def settings(tmp_path, **wechat):
    from conftest import base_settings_dict, merge
    from tornpay.settings import settings_from_dict

    return settings_from_dict(merge(base_settings_dict(tmp_path, 8888), {"wechat": wechat}),
                              env={})


def test_the_cap_is_wechat_max_concurrent_calls(tmp_path, io_loop):
    client = make_http_client(settings(tmp_path, max_concurrent_calls=7))
    try:
        assert isinstance(client, LeanCurlClient)
        assert (client.max_clients, client.peak) == (7, 0)  # no handle before a call
    finally:
        client.close()
    default = make_http_client(settings(tmp_path))
    assert default.max_clients == 384  # ~1,300 checkouts/s x ~300 ms of WeChat (docs/security.md)
    default.close()


@pytest.mark.gen_test
async def test_handles_follow_the_calls_in_flight_and_the_cap_queues_the_rest(gate, http_server,
                                                                          base_url):
    client = LeanCurlClient(force_instance=True, max_clients=4)
    try:
        # A body bigger than the 16 KiB upload buffer still arrives whole.
        bodies = [b"x" * size for size in (10, 100_000, 20, 30, 40, 50)]
        replies = asyncio.gather(*[client.fetch(base_url + "/", method="POST", body=body)
                                   for body in bodies])
        while len(gate["waiting"]) < 4:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        # Four in flight (the cap), two waiting in the client's queue.
        assert (len(gate["waiting"]), client.peak) == (4, 4)
        gate["release"].set()
        answered = await replies
        assert [int(r.body) for r in answered] == [len(b) for b in bodies]
        assert client.peak == 4  # handles were reused, never more than the cap
        await client.fetch(base_url + "/", method="POST", body=b"again")
        assert client.peak == 4
    finally:
        client.close()


@pytest.mark.gen_test
async def test_calls_below_the_cap_make_only_the_handles_they_need(gate, http_server, base_url):
    client = LeanCurlClient(force_instance=True, max_clients=1000)
    try:
        for _ in range(3):  # one after another: one handle, reused
            gate["release"].set()
            await client.fetch(base_url + "/", method="POST", body=b"one")
        assert client.peak == 1
    finally:
        client.close()

"""The result page's plugin note: any plugin may offer one, off the IOLoop, never breaking the page."""

import threading

import pytest

from flow_helpers import Browser, checkout_to_pay_page


@pytest.fixture
def tp_overrides():
    return {"plugins": ["tornpay.plugins.catalog"]}  # no booking plugin: only ours note


class NotePlugin:
    """Offers a note; records the thread it ran on."""

    def __init__(self, note=None, fail=False):
        self.note, self.fail, self.threads = note, fail, []

    def tornpay_result_note(self, out_trade_no):
        self.threads.append(threading.current_thread())
        if self.fail:
            raise RuntimeError("note store down")
        return self.note


async def _result_page(http_client, base_url):
    browser = Browser(http_client, base_url)
    pay_path = await checkout_to_pay_page(browser)
    no = pay_path.rsplit("/", 1)[-1]
    return await browser.get(f"/wxpay/orders/{no}/result")


@pytest.mark.gen_test
async def test_a_plugin_note_shows_on_the_result_page_computed_off_the_loop(
        ctx, http_client, base_url):
    broken, noting = NotePlugin(fail=True), NotePlugin(note="confirmed")
    ctx.hooks.register(broken, name="broken-note")
    ctx.hooks.register(noting, name="noting")
    page = await _result_page(http_client, base_url)
    assert page.code == 200
    assert 'data-booking="confirmed"' in page.body.decode()
    assert noting.threads and noting.threads[0] is not threading.main_thread()
    assert broken.threads  # asked first, failed, and the page still shows


@pytest.mark.gen_test
async def test_no_note_no_section(ctx, http_client, base_url):
    ctx.hooks.register(NotePlugin(note=None), name="silent")
    page = await _result_page(http_client, base_url)
    assert page.code == 200 and "data-booking" not in page.body.decode()

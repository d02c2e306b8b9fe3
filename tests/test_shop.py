"""The demo shop lists the catalog and sends a visitor on the wrong host name to public_url."""

import pytest


@pytest.mark.gen_test
async def test_shop_lists_catalog_with_checkout_links(http_client, tp_settings):
    response = await http_client.fetch(tp_settings.server.public_url + "/")
    assert response.code == 200
    assert b'href="/wxpay/checkout/coach-101"' in response.body
    assert b"Private coaching, 1 hour" in response.body and b"99.00" in response.body


@pytest.mark.gen_test
async def test_other_host_name_redirects_to_public_url(http_client, base_url, tp_settings):
    # base_url is http://localhost:PORT; public_url is http://127.0.0.1:PORT.
    assert "localhost" in base_url
    response = await http_client.fetch(base_url + "/", follow_redirects=False, raise_error=False)
    assert response.code == 302
    assert response.headers["Location"] == tp_settings.server.public_url + "/"


@pytest.fixture
def tp_overrides(request):
    return getattr(request, "param", {})


@pytest.mark.parametrize("tp_overrides", [{"server": {"shop_page": False}}], indirect=True)
@pytest.mark.gen_test
async def test_shop_page_off_is_404(http_client, tp_settings):
    response = await http_client.fetch(tp_settings.server.public_url + "/", raise_error=False)
    assert response.code == 404

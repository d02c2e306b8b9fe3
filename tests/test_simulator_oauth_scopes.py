"""Issue 20 items 3 and 7: the web-authorization domain (10003) and snsapi_userinfo."""

import json
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from tornado.escape import xhtml_unescape

from sim_helpers import APPID, OPENID, box, make_config, state  # noqa: F401  (fixtures)
from test_simulator_browser_side import app, authorize_path, get, sim, sim_config, token  # noqa
from tornpay.simulator.config import SimulatorConfig

BOB = "oUpF8uN95-Ptaags6E_roPHg7AG0"


@pytest.mark.parametrize("redirect_uri", [
    "https://evil.example/cb",          # another host
    "https://pay.shop.example/cb",      # a subdomain of the configured one
    "https://example/cb",               # the parent
    "https://shop.example.evil.example/cb",
])
@pytest.mark.gen_test
async def test_redirect_outside_the_authorization_domain_is_refused(sim, redirect_uri):
    for user in ({}, {"sim_user": OPENID}):  # the picker page and the direct redirect
        page = await get(sim, authorize_path(redirect_uri=redirect_uri, **user))
        assert page.code == 400 and b"10003" in page.body
        assert "redirect_uri域名与后台配置不一致" in page.body.decode()
        assert not page.headers.get("Location")
    assert not sim.state.codes


@pytest.mark.gen_test
async def test_redirect_on_the_authorization_domain_gets_a_code(sim):
    page = await get(sim, authorize_path(redirect_uri="https://SHOP.example:8443/cb",
                                         sim_user=OPENID))
    assert page.code == 302
    assert urlsplit(page.headers["Location"]).hostname == "shop.example"


def test_domains_default_to_the_host_of_public_url():
    import types

    ns = types.SimpleNamespace
    settings = ns(server=ns(public_url="https://pay.merchant.example:8443", prefix="/wxpay"),
                  wechat=ns(appid=APPID, app_secret="s", mch_id="1", api_key="k" * 32),
                  simulator=ns(pay_directories=[], oauth_domains=[]))
    assert SimulatorConfig.from_settings(settings).authorization_domains() == [
        "pay.merchant.example"]
    settings.simulator.oauth_domains = ["a.example", "B.example"]
    assert SimulatorConfig.from_settings(settings).authorization_domains() == [
        "a.example", "b.example"]


def _links(body: bytes) -> dict:
    text = body.decode()
    return {m.group(1): xhtml_unescape(m.group(2))
            for m in re.finditer(r"id='tornpay-sim-(allow|deny)' href='([^']+)'", text)}


async def _consent(sim, user=OPENID):
    page = await get(sim, authorize_path(scope="snsapi_userinfo", sim_user=user))
    assert page.code == 200
    text = page.body.decode()
    assert "允许" in text and "拒绝" in text and "Allow" in text and "Refuse" in text
    return _links(page.body)


@pytest.mark.gen_test
async def test_userinfo_consent_then_profile(sim):
    links = await _consent(sim, BOB)
    assert not sim.state.codes  # nothing issued before the user agrees
    allowed = await get(sim, links["allow"].replace("/_sim", "", 1))
    assert allowed.code == 302
    query = parse_qs(urlsplit(allowed.headers["Location"]).query)
    assert query["state"] == ["s1"]
    reply = await token(sim, query["code"][0])
    assert reply["scope"] == "snsapi_userinfo" and reply["openid"] == BOB
    info = json.loads((await get(sim, "/sns/userinfo?" + urlencode({
        "access_token": reply["access_token"], "openid": BOB, "lang": "zh_CN"}))).body)
    assert info["openid"] == BOB and info["nickname"].startswith("Bob")
    assert set(info) >= {"sex", "province", "city", "country", "headimgurl", "privilege"}
    ok = json.loads((await get(sim, "/sns/auth?" + urlencode({
        "access_token": reply["access_token"], "openid": BOB}))).body)
    assert ok == {"errcode": 0, "errmsg": "ok"}
    wrong = json.loads((await get(sim, "/sns/userinfo?" + urlencode({
        "access_token": reply["access_token"], "openid": OPENID}))).body)
    assert wrong["errcode"] == 40003
    bogus = json.loads((await get(sim, "/sns/userinfo?" + urlencode({
        "access_token": "nope", "openid": BOB}))).body)
    assert bogus["errcode"] == 40001


@pytest.mark.gen_test
async def test_userinfo_refused_consent_gives_state_and_no_code(sim):
    links = await _consent(sim)
    refused = await get(sim, links["deny"].replace("/_sim", "", 1))
    assert refused.code == 302
    query = parse_qs(urlsplit(refused.headers["Location"]).query)
    assert query == {"state": ["s1"]}
    assert not sim.state.codes


@pytest.mark.gen_test
async def test_base_scope_token_cannot_read_userinfo(sim):
    page = await get(sim, authorize_path(sim_user=OPENID))  # snsapi_base: no consent screen
    code = parse_qs(urlsplit(page.headers["Location"]).query)["code"][0]
    reply = await token(sim, code)
    info = json.loads((await get(sim, "/sns/userinfo?" + urlencode({
        "access_token": reply["access_token"], "openid": OPENID}))).body)
    assert info["errcode"] == 48001 and info["errmsg"].startswith("api unauthorized")


@pytest.mark.parametrize("section,message", [
    ({"oauth_domains": ["https://shop.example"]}, "simulator.oauth_domains"),
    ({"oauth_domains": ["shop.example:8443"]}, "simulator.oauth_domains"),
    ({"public_url": "shop.example/_sim"}, "simulator.public_url"),
])
def test_simulator_settings_are_checked(section, message):
    import os

    import yaml

    from tornpay.settings import SettingsError, settings_from_dict

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "settings.yaml"), encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    data["simulator"].update(section)
    with pytest.raises(SettingsError, match=message):
        settings_from_dict(data, env={})

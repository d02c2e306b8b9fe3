"""The bridge script itself, run in Node with a minimal DOM stub against the live cashier."""

import asyncio
import json
import shutil

import pytest

from sim_helpers import API_KEY, APPID, app, box, sim, sim_config, state  # noqa: F401
from tornpay.protocol.sign import make_sign

NODE = shutil.which("node")

# A tiny DOM + XMLHttpRequest (over Node's http) so the unmodified script can run;
# it clicks the sheet's button named by CLICK and prints the callback's result.
HARNESS = r"""
const http = require("http");
const [src, href, params, click, scriptUrl] = process.argv.slice(1);
const byId = {}; const listeners = {};
function Node(tag) { this.tag = tag; this.children = []; this.attrs = {}; this.parentNode = null; }
Node.prototype.setAttribute = function (k, v) {
  this.attrs[k] = v; if (k === "id") byId[v] = this;
};
Node.prototype.appendChild = function (c) { c.parentNode = this; this.children.push(c); return c; };
Node.prototype.removeChild = function (c) { this.children = this.children.filter(x => x !== c); };
global.window = global;
global.location = {href: href};
global.document = {
  body: new Node("body"), documentElement: new Node("html"),
  createElement: t => new Node(t), createTextNode: t => ({text: t}),
  addEventListener: (n, f) => { listeners[n] = f; },
  dispatchEvent: e => { if (listeners[e.type]) listeners[e.type](e); },
};
global.Event = function (type) { this.type = type; };
document.currentScript = {src: scriptUrl};
// fetch over Node's http, sending the Referer a browser would (referrerPolicy unsafe-url).
global.fetch = (url, init) => new Promise((resolve, reject) => {
  const headers = Object.assign({}, init.headers);
  if (init.referrerPolicy === "unsafe-url") { headers.Referer = href; }
  const req = http.request(url, {method: init.method, headers}, res => {
    let data = ""; res.on("data", d => { data += d; });
    res.on("end", () => resolve({status: res.statusCode, text: () => Promise.resolve(data)}));
  });
  req.on("error", reject); req.end(init.body);
});
require("vm").runInThisContext(require("fs").readFileSync(src, "utf8"));
document.addEventListener("WeixinJSBridgeReady", () => {
  WeixinJSBridge.invoke("getBrandWCPayRequest", JSON.parse(params), res => {
    console.log(JSON.stringify(res)); process.exit(0);
  });
  const poll = setInterval(() => {
    if (byId[click]) { clearInterval(poll); byId[click].onclick(); }
  }, 5);
});
"""


async def run_bridge(sim, tmp_path, params, href, click="tornpay-sim-pay"):
    script = (await sim.client.fetch(sim.base + "/jsbridge.js")).body
    path = tmp_path / "jsbridge.js"
    path.write_bytes(script)
    proc = await asyncio.create_subprocess_exec(
        NODE, "-e", HARNESS, str(path), href, json.dumps(params), click, sim.base + "/jsbridge.js",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1])


def jsapi(prepay_id):
    params = {"appId": APPID, "timeStamp": "1717216245", "nonceStr": "abc",
              "package": "prepay_id=" + prepay_id, "signType": "MD5"}
    params["paySign"] = make_sign(params, API_KEY)
    return params


@pytest.mark.skipif(NODE is None, reason="node not installed")
@pytest.mark.gen_test(timeout=20)
async def test_bridge_pays_cancels_and_fails_like_wechat(sim, tmp_path):
    page = sim.base + "/shop/pay/T1?from=menu"
    order = await sim.order()
    cancelled = await run_bridge(sim, tmp_path, jsapi(order["prepay_id"]), page,
                                 "tornpay-sim-cancel")
    assert cancelled == {"err_msg": "get_brand_wcpay_request:cancel"}
    assert sim.state.find_order(order["out_trade_no"]).trade_state == "NOTPAY"
    assert await run_bridge(sim, tmp_path, jsapi(order["prepay_id"]), page) == {
        "err_msg": "get_brand_wcpay_request:ok"}
    assert sim.state.find_order(order["out_trade_no"]).trade_state == "SUCCESS"
    other = await sim.order()
    failed = await run_bridge(sim, tmp_path, jsapi(other["prepay_id"]), sim.base + "/shop/x.html")
    assert failed["err_msg"] == "get_brand_wcpay_request:fail"
    assert failed["err_desc"].startswith("当前页面的URL未注册")

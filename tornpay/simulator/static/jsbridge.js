/* tornpay simulator: a WeixinJSBridge stand-in, loaded by the pay page only in simulator mode. */
(function () {
  "use strict";
  // The simulator's configured public URL; null: next to where this script was loaded from.
  var CASHIER = __CASHIER_URL__;
  if (!CASHIER) {
    var me = document.currentScript && document.currentScript.src;
    CASHIER = me ? me.replace(/\/jsbridge\.js(\?.*)?$/, "") + "/cashier" : "/_sim/cashier";
  }
  if (window.WeixinJSBridge && window.WeixinJSBridge.__tornpaySimulator) { return; }

  function post(path, data, done) {
    // The cashier checks the page against the payment directories by the Referer the
    // browser sends ("unsafe-url": the full URL even cross-origin), like WeChat's WebView.
    // text/plain keeps the cross-origin request "simple" (no preflight needed).
    fetch(CASHIER + path, {
      method: "POST", body: JSON.stringify(data), credentials: "omit",
      referrerPolicy: "unsafe-url", headers: {"Content-Type": "text/plain;charset=UTF-8"}
    }).then(function (response) {
      return response.text().then(function (text) {
        var reply = null;
        try { reply = JSON.parse(text); } catch (e) { reply = null; }
        done(reply || {ok: false, err_desc: "simulator cashier answered HTTP " + response.status});
      });
    }, function () { done({ok: false, err_desc: "simulator cashier unreachable"}); });
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var name in attrs) { if (attrs.hasOwnProperty(name)) { node.setAttribute(name, attrs[name]); } }
    if (text !== undefined) { node.appendChild(document.createTextNode(String(text))); }
    return node;
  }

  // The sheet speaks the page's language (its <html lang>), like WeChat's follows the phone.
  var ZH = /^zh/i.test((document.documentElement && document.documentElement.lang) || "");
  var BUTTON = "display:block;width:100%;margin-top:8px;padding:12px;font-size:17px;border:0;border-radius:6px;";

  function showSheet(order, onPay, onCancel) {
    var overlay = el("div", {id: "tornpay-sim-sheet", style: "position:fixed;left:0;top:0;right:0;bottom:0;" +
      "background:rgba(0,0,0,.5);z-index:2147483647;display:flex;align-items:flex-end;" +
      "justify-content:center;font-family:sans-serif"});
    var box = el("div", {style: "background:#fff;width:100%;max-width:420px;padding:16px;" +
      "border-radius:12px 12px 0 0;text-align:center;box-sizing:border-box"});
    box.appendChild(el("div", {style: "color:#c00;font-weight:bold"}, "SIMULATOR \u00b7 " + (ZH ? "\u5fae\u4fe1\u652f\u4ed8" : "WeChat Pay")));
    box.appendChild(el("div", {id: "tornpay-sim-body", style: "margin-top:8px"}, order.body));
    box.appendChild(el("div", {id: "tornpay-sim-amount", style: "font-size:32px;margin:12px 0"},
      "\u00a5" + (order.total_fee / 100).toFixed(2)));
    var pay = el("button", {id: "tornpay-sim-pay", type: "button",
      style: BUTTON + "background:#07c160;color:#fff"}, ZH ? "\u652f\u4ed8" : "Pay");
    var cancel = el("button", {id: "tornpay-sim-cancel", type: "button",
      style: BUTTON + "background:#eee;color:#333"}, ZH ? "\u53d6\u6d88" : "Cancel");
    box.appendChild(pay);
    box.appendChild(cancel);
    overlay.appendChild(box);
    function close() { if (overlay.parentNode) { overlay.parentNode.removeChild(overlay); } }
    pay.onclick = function () { pay.disabled = true; cancel.disabled = true; onPay(close); };
    cancel.onclick = function () { close(); onCancel(); };
    (document.body || document.documentElement).appendChild(overlay);
  }

  function answer(cb, outcome, extra) {
    var res = {err_msg: "get_brand_wcpay_request:" + outcome};
    if (extra) { for (var k in extra) { if (extra.hasOwnProperty(k)) { res[k] = extra[k]; } } }
    if (typeof cb === "function") { setTimeout(function () { cb(res); }, 0); }
  }

  function getBrandWCPayRequest(params, cb) {
    var data = {params: params || {}};
    post("/check", data, function (reply) {
      if (!reply.ok) { answer(cb, "fail", {err_desc: reply.err_desc}); return; }
      showSheet(reply.order, function (close) {
        post("/pay", data, function (paid) {
          close();
          if (paid.ok) { answer(cb, "ok"); } else { answer(cb, "fail", {err_desc: paid.err_desc}); }
        });
      }, function () { answer(cb, "cancel"); });
    });
  }

  window.WeixinJSBridge = {
    __tornpaySimulator: true,
    invoke: function (name, params, cb) {
      if (name === "getBrandWCPayRequest") { getBrandWCPayRequest(params, cb); return; }
      if (typeof cb === "function") {
        setTimeout(function () { cb({err_msg: name + ":fail", err_desc: "not supported by the simulator"}); }, 0);
      }
    },
    on: function () {},
    call: function () {}
  };

  // Like the real bridge, announce readiness after the page's own scripts had a chance to listen.
  setTimeout(function () {
    var ev;
    try { ev = new Event("WeixinJSBridgeReady", {bubbles: true}); } catch (e) {
      ev = document.createEvent("Event");
      ev.initEvent("WeixinJSBridgeReady", true, true);
    }
    document.dispatchEvent(ev);
  }, 0);
})();

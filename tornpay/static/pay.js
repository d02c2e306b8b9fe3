/* tornpay pay page: start WeChat Pay through WeixinJSBridge, then trust only the server's word. */
(function () {
  "use strict";
  var root = document.getElementById("tornpay-pay");
  var blob = document.getElementById("tornpay-jsapi");
  if (!root || !blob) { return; }
  var params = JSON.parse(blob.textContent);
  var textsEl = document.getElementById("tornpay-texts");
  var texts = textsEl ? JSON.parse(textsEl.textContent) : {};
  // The page's language: the server puts the translated texts in a JSON island.
  function T(english) { return texts[english] || english; }
  var statusEl = document.getElementById("tornpay-status");
  var button = document.getElementById("tornpay-pay-button");
  var pollUrl = root.getAttribute("data-poll-url");
  var successUrl = root.getAttribute("data-success-url");
  var BRIDGE_WAIT_MS = 3000;
  var POLL_MS = 1500;
  var POLL_LIMIT = 40; // about a minute, then tell the payer what to do
  var bridgeReady = false;
  var busy = false;

  function show(text, kind) {
    statusEl.textContent = text;
    statusEl.className = "tp-status" + (kind ? " " + kind : "");
  }

  function offer(label) {
    busy = false;
    button.textContent = label;
    button.disabled = false;
  }

  // "ok" from the bridge is only a hint (WeChat says it is not reliable):
  // the order counts as paid when the server says so.
  function poll(n) {
    window.tornpayOrderState(pollUrl, function (state) {
      if (state === "paid") {
        show(T("Paid. Thank you!"), "paid");
        window.location.href = successUrl;
      } else if (state === "closed") {
        show(T("This order was closed; nothing was charged."), "cancelled");
      } else {
        again(n);
      }
    });
  }

  function again(n) {
    if (n + 1 >= POLL_LIMIT) {
      show(T("WeChat has not confirmed the payment yet. Check again in a moment on the result page."));
      window.location.href = successUrl;
      return;
    }
    setTimeout(function () { poll(n + 1); }, POLL_MS);
  }

  function pay() {
    if (busy) { return; }
    if (typeof window.WeixinJSBridge === "undefined") {
      show(T("Please open this page in WeChat to pay."), "failed");
      return;
    }
    busy = true;
    button.disabled = true;
    show(T("Waiting for WeChat Pay\u2026"));
    window.WeixinJSBridge.invoke("getBrandWCPayRequest", params, function (res) {
      var msg = (res && res.err_msg) || "";
      if (msg === "get_brand_wcpay_request:ok") {
        show(T("Confirming your payment\u2026"));
        poll(0);
      } else if (msg === "get_brand_wcpay_request:cancel") {
        show(T("Payment cancelled."), "cancelled");
        offer(T("Pay again"));
      } else {
        show(T("Payment failed: ") + ((res && (res.err_desc || res.errMsg)) || msg || "unknown error"),
             "failed");
        offer(T("Try again"));
      }
    });
  }

  function onBridgeReady() {
    if (bridgeReady) { return; }
    bridgeReady = true;
    button.disabled = false;
    pay();
  }

  button.addEventListener("click", pay, false);
  if (typeof window.WeixinJSBridge === "undefined") {
    document.addEventListener("WeixinJSBridgeReady", onBridgeReady, false);
    setTimeout(function () {
      if (!bridgeReady) {
        show(T("Please open this page in WeChat to pay."), "failed");
      }
    }, BRIDGE_WAIT_MS);
  } else {
    onBridgeReady();
  }
}());

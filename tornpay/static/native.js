/* tornpay NATIVE pay page: count down the QR code's life and poll the server (never WeChat). */
(function () {
  "use strict";
  var root = document.getElementById("tornpay-pay");
  if (!root || root.getAttribute("data-trade-type") !== "NATIVE") { return; }
  var pollUrl = root.getAttribute("data-poll-url");
  var successUrl = root.getAttribute("data-success-url");
  var deadline = Date.now() + 1000 * parseInt(root.getAttribute("data-seconds-left") || "0", 10);
  var qrBox = document.getElementById("tornpay-qr-box");
  var expired = document.getElementById("tornpay-expired");
  var expiredText = document.getElementById("tornpay-expired-text");
  var countdown = document.getElementById("tornpay-countdown");
  var POLL_MS = 2000;
  var stopped = false;

  // The code is dead (expired or the order closed): offer a fresh one instead.
  function retire(closed) {
    stopped = true;
    if (closed) { expiredText.textContent = expiredText.getAttribute("data-cancelled"); }
    qrBox.hidden = true;
    expired.hidden = false;
  }

  function tick() {
    var left = deadline - Date.now();
    if (left <= 0) { retire(false); return false; }
    var minutes = String(Math.ceil(left / 60000));
    countdown.textContent = countdown.getAttribute("data-template").replace("%(minutes)s", minutes);
    return true;
  }

  // Only the server's word counts: the notify (or orderquery) moved the order.
  function poll() {
    if (stopped || !tick()) { return; }
    window.tornpayOrderState(pollUrl, function (state) {
      if (state === "paid") {
        stopped = true;
        window.location.href = successUrl;
      } else if (state === "closed") {
        retire(true);
      } else {
        setTimeout(poll, POLL_MS);
      }
    });
  }

  if (!qrBox.hidden) { poll(); }
}());

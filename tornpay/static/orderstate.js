/* tornpay: ask the server (never WeChat) for an order's state; shared by the pay pages. */
(function () {
  "use strict";
  var PAID = {PAID: 1, PARTIAL_REFUNDED: 1, REFUNDED: 1};
  var CLOSED = {CLOSED: 1, PAYERROR: 1};

  // Calls back with "paid", "closed" or "pending" ("pending" also when the request failed).
  window.tornpayOrderState = function (url, callback) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", url, true);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.onload = function () {
      var order = null;
      try { order = JSON.parse(xhr.responseText); } catch (e) { order = null; }
      var state = order && order.state;
      callback(PAID[state] ? "paid" : (CLOSED[state] ? "closed" : "pending"));
    };
    xhr.onerror = function () { callback("pending"); };
    xhr.send();
  };
}());

/* tornpay result page: while the payment or the booking is still settling, show the server's fresh view in place. */
(function () {
  "use strict";
  var POLL_MS = 1500;
  var POLL_LIMIT = 200; // about five minutes; after that a manual refresh is the payer's call
  var main = document.querySelector("main.tp-main");
  if (!main || !window.DOMParser) { return; }

  // Settled once the order is paid or cancelled and no booking is still only reserved.
  function settled(root) {
    var result = root.querySelector("#tornpay-result");
    var booking = root.querySelector("#tornpay-booking");
    if (!result || result.getAttribute("data-status") === "pending") { return !result; }
    return !(booking && booking.getAttribute("data-booking") === "reserved");
  }

  function poll(n) {
    if (settled(main) || n >= POLL_LIMIT) { return; }
    var xhr = new XMLHttpRequest();
    xhr.open("GET", window.location.href, true);
    xhr.onload = function () {
      if (xhr.status === 200) {
        var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
        var fresh = doc.querySelector("main.tp-main");
        if (fresh && fresh.innerHTML !== main.innerHTML) {
          main.innerHTML = fresh.innerHTML;
          document.title = doc.title;
        }
      }
      next(n);
    };
    xhr.onerror = function () { next(n); };
    xhr.send();
  }

  function next(n) { setTimeout(function () { poll(n + 1); }, POLL_MS); }

  next(0);
}());

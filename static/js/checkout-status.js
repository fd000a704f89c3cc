// While a payment waits for Stripe's confirmation: ask the server every few seconds
// (for a few minutes at most) and show the page again once the payment is settled.
// "Stop checking" ends it; the "Check again" link works without this script.
(function () {
  "use strict";
  var box = document.querySelector("[data-checkout-poll]");
  if (!box || !window.fetch) { return; }
  var url = box.dataset.checkoutPoll;
  var every = Number(box.dataset.pollSeconds || 5) * 1000;
  var left = Number(box.dataset.pollTimes || 60);
  var stop = box.querySelector("[data-poll-stop]");
  var done = box.querySelector("[data-poll-done]");
  var timer = null;
  var stopped = false;

  function finish() {
    stopped = true;
    window.clearTimeout(timer);
    if (stop) { stop.hidden = true; }
    if (done) { done.hidden = false; }
  }

  function schedule() {
    if (stopped) { return; }
    if (left <= 0) { finish(); return; }
    left -= 1;
    timer = window.setTimeout(check, every);
  }

  function check() {
    fetch(url, {
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", "Accept": "application/json" }
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (answer) {
      if (stopped) { return; }
      if (answer && answer.state && answer.state !== "open") {
        window.location.reload();
        return;
      }
      schedule();
    }).catch(schedule);
  }

  if (stop) {
    stop.hidden = false;
    stop.addEventListener("click", finish);
  }
  schedule();
})();

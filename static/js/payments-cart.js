// The fee cart: the total as the family chooses, and one payment per click.
// Without this script the page works the same; the server computes every amount
// again and gives a second press of "Pay" the same payment page.
(function () {
  "use strict";

  function cents(text) {
    // As typed, or as the page writes amounts: 20, $20.00, US$20.00 (Chinese).
    var value = String(text || "").replace(/^\s*US/i, "").replace(/[$\s\u00a0]/g, "");
    if (/^\d{1,7},\d{1,2}$/.test(value)) { value = value.replace(",", "."); }
    else { value = value.replace(/,(?=\d{3}(\D|$))/g, ""); }
    if (!/^\d{1,7}(\.\d{1,2})?$/.test(value)) { return 0; }
    var parts = value.split(".");
    return Number(parts[0]) * 100 + Number(((parts[1] || "") + "00").slice(0, 2));
  }

  function dollars(amount, currency) {
    var whole = String(Math.floor(amount / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return currency + whole + "." + String(amount % 100).padStart(2, "0");
  }

  document.querySelectorAll("form[data-cart]").forEach(function (form) {
    var output = form.querySelector("[data-cart-total]");
    var busy = form.querySelector("[data-cart-busy]");

    function update() {
      if (!output) { return; }
      var total = 0;
      form.querySelectorAll("input[type=checkbox][data-cents]").forEach(function (box) {
        if (box.checked) { total += Number(box.dataset.cents); }
      });
      form.querySelectorAll("[data-cart-lunch]").forEach(function (wrap) {
        var input = wrap.querySelector("input");
        var amount = input ? cents(input.value) : 0;
        if (amount >= Number(wrap.dataset.minCents) && amount <= Number(wrap.dataset.maxCents)) {
          total += amount;
        }
      });
      output.textContent = dollars(total, output.dataset.currency || "$");
    }

    function release() {
      delete form.dataset.submitting;
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        button.disabled = false;
        button.removeAttribute("aria-disabled");
      });
      if (busy) { busy.hidden = true; }
    }

    form.addEventListener("change", update);
    form.addEventListener("input", update);
    form.addEventListener("submit", function (event) {
      if (form.dataset.submitting) { event.preventDefault(); return; }
      form.dataset.submitting = "1";
      if (busy) { busy.hidden = false; }
      // Disabled after the browser has read the pressed button's name and value.
      window.setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (button) {
          button.disabled = true;
          button.setAttribute("aria-disabled", "true");
        });
      }, 0);
    });
    // Back from Stripe's page, the browser may show this page from its cache.
    window.addEventListener("pageshow", function (event) { if (event.persisted) { release(); } });
    update();
  });
})();

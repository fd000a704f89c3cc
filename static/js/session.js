// Warn before the idle sign-out, and let the person stay signed in.
(function () {
  "use strict";
  var box = document.getElementById("session-warning");
  if (!box) { return; }
  var idle = Number(box.dataset.idleSeconds) * 1000;
  var warning = Number(box.dataset.warningSeconds) * 1000;
  var signedOutUrl = box.dataset.signedOutUrl;
  var form = box.querySelector("form");
  var lastFocus = null;
  var warnTimer = null;
  var outTimer = null;

  function schedule() {
    clearTimeout(warnTimer);
    clearTimeout(outTimer);
    warnTimer = setTimeout(show, Math.max(idle - warning, 0));
    outTimer = setTimeout(function () { window.location.assign(signedOutUrl); }, idle);
  }

  function show() {
    lastFocus = document.activeElement;
    box.hidden = false;
    box.querySelector("button").focus();
  }

  function hide() {
    box.hidden = true;
    if (lastFocus && lastFocus.focus) { lastFocus.focus(); }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var token = form.querySelector("[name=csrfmiddlewaretoken]").value;
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": token, "X-Requested-With": "fetch" }
    }).then(function (response) {
      if (response.ok) { hide(); schedule(); } else { window.location.assign(signedOutUrl); }
    }, function () { form.submit(); });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !box.hidden) { form.requestSubmit(); }
  });

  schedule();
})();

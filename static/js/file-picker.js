// A file field whose button speaks the page's language: the browser's own input lies
// invisible over a label drawn as a button (Tab, Space and Enter still reach it), and
// this script writes the names of the chosen files, or "No file chosen", in the
// page's language where a screen reader hears them. With scripting turned off the
// browser's own input shows instead, with its own list of the files chosen (site.css).
(function () {
  "use strict";
  var language = document.documentElement.lang || "en";
  var list = null;
  if (window.Intl && Intl.ListFormat) {
    list = new Intl.ListFormat(language, { style: "long", type: "conjunction" });
  }

  document.querySelectorAll("[data-file-picker]").forEach(function (picker) {
    var input = picker.querySelector("input[type=file]");
    var chosen = picker.querySelector("[data-file-chosen]");
    if (!input || !chosen) { return; }

    function show() {
      var names = Array.prototype.map.call(input.files || [], function (file) {
        return file.name;
      });
      if (!names.length) {
        chosen.textContent = chosen.dataset.none;
      } else {
        chosen.textContent = list ? list.format(names) : names.join(", ");
      }
    }

    var described = (input.getAttribute("aria-describedby") || "").split(/\s+/);
    if (described.indexOf(chosen.id) < 0) {
      input.setAttribute("aria-describedby", described.concat(chosen.id).join(" ").trim());
    }
    input.addEventListener("change", show);
    show();  // files the browser kept when the family came back to the page
    chosen.hidden = false;
  });
})();

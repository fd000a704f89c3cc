// A form sent back with errors: move focus to the list of errors at the top, so that
// a screen reader reads it at once and a keyboard user starts from it (each error
// links to its field). Without this script the list is still first in <main>.
(function () {
  "use strict";
  var summary = document.querySelector(".error-summary");
  if (summary) { summary.focus(); }
})();

// The web view's only script (served as a file: the Content-Security-Policy forbids inline script).
// - A checkbox marked data-select-all selects every job of its table.
// - A page whose body has data-refresh="N" reloads itself every N seconds while it is shown.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var all = document.querySelector("input[data-select-all]");
    if (all) {
      all.addEventListener("change", function () {
        document.querySelectorAll("input[name=asset]").forEach(function (box) {
          box.checked = all.checked;
        });
      });
    }
    var every = parseInt(document.body.getAttribute("data-refresh") || "", 10);
    if (every > 0) {
      window.setTimeout(function reload() {
        if (document.hidden) {
          document.addEventListener("visibilitychange", reload, { once: true });
        } else {
          window.location.reload();
        }
      }, every * 1000);
    }
  });
})();

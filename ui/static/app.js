// Live pages (main[data-live]) fetch themselves again every data-live ms
// and swap in the new content; without JavaScript a meta refresh does it.
(function () {
  "use strict";
  function tick() {
    var main = document.querySelector("main[data-live]");
    if (!main) { return; }
    var every = parseInt(main.getAttribute("data-live"), 10) || 2000;
    setTimeout(function () {
      if (document.activeElement && document.activeElement.form) { tick(); return; }
      fetch(location.pathname, { headers: { "X-Partial": "1" }, credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var m = document.querySelector("main[data-live]");
          if (m) { m.outerHTML = html; }
        })
        .catch(function () {})
        .then(tick);
    }, every);
  }
  tick();
})();

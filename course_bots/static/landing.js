// The admin landing page: copy buttons for the registration URL and the manual values, announced to screen readers.
(function () {
  "use strict";
  var T = JSON.parse(document.getElementById("landing-i18n").textContent);
  var status = document.getElementById("landing-copied");

  function valueOf(id) {
    var el = document.getElementById(id);
    if (!el) { return ""; }
    return el.value !== undefined && el.tagName === "INPUT" ? el.value : el.textContent;
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "cb-visually-hidden";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  function announce(message) {
    status.textContent = "";
    window.setTimeout(function () { status.textContent = message; }, 50);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) { return; }
    var text = valueOf(button.getAttribute("data-copy"));
    var done = function () { button.setAttribute("data-copied", "true"); announce(T.copied + " " + text); };
    var failed = function () {
      if (fallbackCopy(text)) { done(); } else { announce(T.copy_failed); }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, failed);
    } else {
      failed();
    }
  });
}());

// The student page: one chat component bound to the page's own session token.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var root = document.querySelector('[data-chat="cb"]');
  if (!main || !root) { return; }
  window.CourseBots.mountChat(root, { fetch: window.CourseBots.fetch, botId: main.dataset.bot });
})();

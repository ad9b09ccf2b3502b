// Keeps the page's session token fresh while the page is open, and gives other scripts an authorized fetch.
(function () {
  "use strict";
  var tokenMeta = document.querySelector('meta[name="coursebots-token"]');
  var expiresMeta = document.querySelector('meta[name="coursebots-token-expires"]');
  var state = { token: tokenMeta ? tokenMeta.content : "", expiresAt: expiresMeta ? Number(expiresMeta.content) : 0 };
  if (tokenMeta) { tokenMeta.remove(); }

  function authFetch(url, options) {
    options = options || {};
    var headers = new Headers(options.headers || {});
    headers.set("Authorization", "Bearer " + state.token);
    options.headers = headers;
    return fetch(url, options);
  }

  function renew() {
    return authFetch("/api/v1/session/renew", { method: "POST" }).then(function (response) {
      if (!response.ok) { return; }
      return response.json().then(function (body) { state.token = body.token; state.expiresAt = body.expires_at; });
    }).catch(function () { /* offline: retry on the next tick */ });
  }

  // Renew when less than a third of the lifetime is left; check every minute.
  setInterval(function () {
    var left = state.expiresAt - Date.now() / 1000;
    if (left < 600) { renew(); }
  }, 60000);

  window.CourseBots = { fetch: authFetch, renew: renew, token: function () { return state.token; } };
})();

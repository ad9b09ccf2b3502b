// Fair-use limits in the teacher workspace: the teacher's tighter overrides (settings tab), how often limits were
// hit (logs & usage tab, by short pseudonym) and, for administrators, the platform's limits (admin tab).
// Loaded after teacher.js; each part loads when its tab opens. Text from the server is set with textContent only.
(function () {
  "use strict";
  var CB = window.CourseBots;
  var main = document.getElementById("main");
  if (!main || main.dataset.page !== "teacher") { return; }
  var t = CB.catalogue();
  var el = CB.el, fmt = CB.fmt;
  var lang = main.dataset.lang;
  var api = "/api/v1/bots/" + main.dataset.bot;
  var FIELDS = ["questions_per_day", "tokens_per_day", "burst_per_minute"];
  var $ = function (id) { return document.getElementById(id); };

  function say(text) { $("cb-teacher-status").textContent = text || ""; }
  function call(url, options) {
    return CB.fetch(url, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) { throw (body && body.error) || { message: String(response.status) }; }
        return body;
      });
    });
  }
  function put(url, body) {
    return call(url, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }
  function limit(value) { return value === null || value === undefined ? t.quota_no_limit : Number(value).toLocaleString(lang); }
  function read(form, role) {  // the fields of one role: a number, or null for an empty field
    var body = { role: role };
    FIELDS.forEach(function (field) {
      var input = form.elements[role + "." + field];
      if (input) { body[field] = input.value.trim() === "" ? null : parseInt(input.value, 10); }
    });
    return body;
  }
  function saveRoles(form, url, roles, show, done) {
    var chain = Promise.resolve(null);
    roles.forEach(function (role) { chain = chain.then(function () { return put(url, read(form, role)); }); });
    chain.then(function (body) { show(body); say(done); }, function (e) { say(t.save_failed + " " + e.message); });
  }

  // --- the teacher's overrides (settings tab) -------------------------------------------------------------------
  var overrides = $("q-overrides");
  function showOverrides(body) {
    ["learner", "teacher"].forEach(function (role) {
      var entry = body.roles[role];
      FIELDS.forEach(function (field) {
        var value = entry.override[field];
        overrides.elements[role + "." + field].value = value === null ? "" : value;
        $("q-" + role + "-" + field + "-platform").textContent = fmt(t.quota_platform_limit, { value: limit(entry.platform[field]) });
      });
    });
  }
  function loadOverrides() { call(api + "/quota/overrides").then(showOverrides, function (e) { say(e.message); }); }
  if (overrides) {
    overrides.addEventListener("submit", function (event) {
      event.preventDefault();
      saveRoles(overrides, api + "/quota/overrides", ["learner", "teacher"], showOverrides, t.quota_saved);
    });
    loadOverrides();  // the settings tab is the one shown first
  }

  // --- limit hits (logs & usage tab) ----------------------------------------------------------------------------
  function loadHits() {
    call(api + "/quota/hits?days=30").then(function (body) {
      var list = $("q-hits");
      list.textContent = "";
      $("q-hits-summary").textContent = body.total ? fmt(t.quota_hits_summary, { hits: limit(body.total) }) : t.quota_hits_none;
      body.by_reason.forEach(function (r) {
        list.appendChild(el("li", {}, fmt(t.quota_hits_reason, { reason: t["quota_code_" + r.code] || r.code,
          role: t["quota_role_" + r.role] || r.role, hits: limit(r.hits), participants: limit(r.participants) })));
      });
    }, function (e) { say(e.message); });
  }

  // --- the platform's limits (admin tab) ------------------------------------------------------------------------
  var platform = $("a-quotas");
  function showPlatform(body) {
    ["learner", "teacher", "platform"].forEach(function (role) {
      var rule = body.rules[role];
      FIELDS.forEach(function (field) {
        var input = platform.elements[role + "." + field];
        if (!input) { return; }
        input.value = rule.set[field] === null ? "" : rule.set[field];
        $("a-q-" + role + "-" + field + "-default").textContent = fmt(t.quota_default_limit, { value: limit(rule["default"][field]) });
      });
    });
  }
  var platformShown = false;  // keep unsaved edits when the tab is opened again
  function loadPlatform() {
    if (platformShown) { return; }
    call("/api/v1/admin/quotas").then(function (body) { showPlatform(body); platformShown = true; }, function (e) { say(e.message); });
  }
  if (platform) {
    platform.addEventListener("submit", function (event) {
      event.preventDefault();
      saveRoles(platform, "/api/v1/admin/quotas", ["learner", "teacher", "platform"], showPlatform, t.admin_quotas_saved);
    });
  }

  // teacher.js selects tabs (click or arrow keys) by setting aria-selected: load a part when its tab is selected
  var loaders = { "tab-settings": overrides ? loadOverrides : null, "tab-logs": loadHits,
    "tab-admin": platform ? loadPlatform : null };
  var observer = new MutationObserver(function (changes) {
    changes.forEach(function (change) {
      var tab = change.target;
      if (tab.getAttribute("aria-selected") === "true" && change.oldValue !== "true" && loaders[tab.id]) { loaders[tab.id](); }
    });
  });
  Object.keys(loaders).forEach(function (id) {
    if ($(id)) { observer.observe($(id), { attributes: true, attributeFilter: ["aria-selected"], attributeOldValue: true }); }
  });
})();

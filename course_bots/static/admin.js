// The administrator's tab of the teacher workspace: this platform's registrations, the model catalogue,
// retention, the thresholds in force and usage per course (counts only). Loaded only for administrators;
// teacher.js calls CourseBots.loadAdmin() when the tab opens. Text from the server is set with textContent only.
(function () {
  "use strict";
  var CB = window.CourseBots;
  var main = document.getElementById("main");
  if (!main || main.dataset.page !== "teacher" || !document.getElementById("panel-admin")) { return; }
  var t = CB.catalogue();
  var el = CB.el, fmt = CB.fmt;
  var lang = main.dataset.lang;
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
  function number(value) { return Number(value || 0).toLocaleString(lang); }
  function date(value) { return value ? new Date(value).toLocaleDateString(lang) : "—"; }
  function row(cells, header) {
    var tr = el("tr", {});
    cells.forEach(function (text, index) {
      tr.appendChild(index === 0 && header ? el("th", { scope: "row" }, text) : el("td", {}, text));
    });
    return tr;
  }
  function empty(body, columns) {
    var tr = el("tr", {});
    tr.appendChild(el("td", { colspan: String(columns) }, t.no_data));
    body.appendChild(tr);
  }

  function loadPlatforms() {
    return call("/api/v1/admin/platforms").then(function (body) {
      $("a-issuer").textContent = fmt(t.admin_issuer, { issuer: body.issuer });
      var tbody = $("a-platforms");
      tbody.textContent = "";
      body.platforms.forEach(function (p) {
        var deployments = p.deployments.map(function (d) {
          return fmt(t.admin_deployment_bots, { id: d.deployment_id, bots: number(d.bots) });
        }).join("; ");
        var via = p.registered_via === "dynamic" ? t.admin_via_dynamic : t.admin_via_manual;
        tbody.appendChild(row([p.client_id, via, date(p.created_at), deployments || "—"], true));
      });
      if (!body.platforms.length) { empty(tbody, 4); }
      $("a-platforms-totals").textContent = fmt(t.admin_platforms_totals, {
        registrations: number(body.totals.registrations), deployments: number(body.totals.deployments),
        bots: number(body.totals.bots) });
    });
  }

  function loadModels() {
    return call("/api/v1/admin/models").then(function (body) {
      var tbody = $("a-models");
      tbody.textContent = "";
      body.models.forEach(function (m) {
        var label = m.extractive ? t.model_extractive : m.label;
        if (m["default"]) { label += " (" + t.admin_default_model + ")"; }
        var where = m.extractive ? "—" : (m.external ? t.admin_external : t.admin_local);
        var context = m.extractive ? "—" : number(m.context_window);
        var tokens = m.extractive ? "—" : number(m.max_answer_tokens);
        tbody.appendChild(row([label, where, context, tokens], true));
      });
    });
  }

  var retention = $("a-retention");
  function showRetention(body) {
    retention.elements.anonymize_days.value = body.platform.anonymize_days;
    retention.elements.delete_days.value = body.platform.delete_days;
  }
  function loadRetention() { return call("/api/v1/admin/retention").then(showRetention); }
  retention.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = { anonymize_days: parseInt(retention.elements.anonymize_days.value, 10),
      delete_days: parseInt(retention.elements.delete_days.value, 10) };
    call("/api/v1/admin/retention", { method: "PUT", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(data) }).then(function (body) {
      showRetention(body);
      say(t.admin_retention_saved);
    }, function (e) { say(t.save_failed + " " + e.message); });
  });

  function loadSettings() {
    return call("/api/v1/admin/settings").then(function (body) {
      var list = $("a-settings");
      list.textContent = "";
      body.settings.forEach(function (s) {
        var term = el("dt", {}, t["admin_setting_" + s.key] || s.key);
        var value = el("dd", {}, typeof s.value === "number" ? s.value.toLocaleString(lang) : String(s.value));
        value.appendChild(document.createTextNode(" "));
        value.appendChild(el("code", {}, s.env));
        list.appendChild(term);
        list.appendChild(value);
      });
    });
  }

  function loadUsage() {
    return call("/api/v1/admin/usage").then(function (body) {
      var tbody = $("a-usage"), foot = $("a-usage-totals");
      tbody.textContent = "";
      foot.textContent = "";
      body.courses.forEach(function (c) {
        var tr = row([c.title || c.context_id, number(c.participants), number(c.questions), number(c.answers),
          number(c.errors), number(c.prompt_tokens + c.completion_tokens), date(c.last_used_at)], true);
        tr.firstChild.setAttribute("data-user-content", "");  // the course's own title, in its own language
        tbody.appendChild(tr);
      });
      if (!body.courses.length) { empty(tbody, 7); }
      var s = body.totals;
      foot.appendChild(row([fmt(t.admin_total_courses, { bots: number(s.bots) }), "", number(s.questions),
        number(s.answers), number(s.errors), number(s.prompt_tokens + s.completion_tokens), ""], true));
    });
  }

  function loadUsageDaily() {  // charts (charts.js) of the last 30 days, each with its table, and usage per model
    return call("/api/v1/admin/usage/daily?days=30").then(function (body) {
      CB.chart($("a-usage-chart"), { title: t.usage_questions_per_day, lang: lang, rows: body.days,
        series: [{ key: "questions", label: t.usage_questions }, { key: "answers", label: t.usage_answers },
                 { key: "errors", label: t.usage_errors }],
        dateLabel: t.chart_date, tableLabel: t.chart_show_table, empty: t.no_data });
      CB.chart($("a-tokens-chart"), { title: t.usage_tokens_per_day, lang: lang, rows: body.days,
        series: [{ key: "tokens_in", label: t.usage_tokens_in }, { key: "tokens_out", label: t.usage_tokens_out }],
        dateLabel: t.chart_date, tableLabel: t.chart_show_table, empty: t.no_data });
      var tbody = $("a-models-usage");
      tbody.textContent = "";
      body.by_model.forEach(function (m) {
        var name = m.model === "refusal" ? t.usage_model_refusal : (m.extractive ? t.model_extractive : m.model);
        tbody.appendChild(row([name, number(m.answers), number(m.tokens_in), number(m.tokens_out),
          number(Math.round(m.answer_seconds))], true));
      });
      if (!body.by_model.length) { empty(tbody, 5); }
    });
  }

  var retentionShown = false;  // keep unsaved edits of the form when the tab is opened again
  CB.loadAdmin = function () {
    var loads = [loadPlatforms, loadModels, loadSettings, loadUsage, loadUsageDaily];
    if (!retentionShown) { loads.push(function () { return loadRetention().then(function () { retentionShown = true; }); }); }
    loads.forEach(function (load) { load().then(null, function (e) { say(e.message); }); });
  };
})();

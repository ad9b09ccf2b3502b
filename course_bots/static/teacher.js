// The teacher workspace: one page, tabs driven here (no cookies, no tokens in URLs, so navigation stays in-page).
// Teacher- and student-written text is inserted with textContent only; no HTML is built from it here.
(function () {
  "use strict";
  var CB = window.CourseBots;
  var main = document.getElementById("main");
  if (!main || main.dataset.page !== "teacher") { return; }
  var t = CB.catalogue();
  var el = CB.el, fmt = CB.fmt;
  var botId = main.dataset.bot;
  var api = "/api/v1/bots/" + botId;
  var $ = function (id) { return document.getElementById(id); };
  var state = { settings: null, templates: {}, loaded: {}, polling: null };

  function say(text) { $("cb-teacher-status").textContent = text || ""; }

  function call(url, options) {
    return CB.fetch(url, options).then(function (response) {
      if (response.status === 204) { return {}; }
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) { throw (body && body.error) || { code: "http_" + response.status, message: String(response.status) }; }
        return body;
      });
    });
  }
  function json(method, body) {
    return { method: method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  }

  // --- tabs (WAI-ARIA tabs pattern: arrow keys move, Home/End jump) --------------------------------------------
  var tabs = Array.prototype.slice.call(document.querySelectorAll('[role="tab"]'));
  function select(tab, focus) {
    tabs.forEach(function (other) {
      var on = other === tab;
      other.setAttribute("aria-selected", String(on));
      other.tabIndex = on ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !on;
    });
    if (focus) { tab.focus(); }
    load(tab.dataset.tab);
  }
  tabs.forEach(function (tab, index) {
    tab.addEventListener("click", function () { select(tab, false); });
    tab.addEventListener("keydown", function (event) {
      var next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 }[event.key];
      if (next === undefined) { return; }
      event.preventDefault();
      select(tabs[(next + tabs.length) % tabs.length], true);
    });
  });

  function load(name) {
    if (name === "settings") { loadSettings(); }
    if (name === "materials") { loadMaterials(); }
    if (name === "logs") { loadLogs(); }
    if (name === "faq") { loadFaq(); }
    if (name === "tests" && CB.loadTestQuestions) { CB.loadTestQuestions(); }
    if (name === "admin" && CB.loadAdmin) { CB.loadAdmin(); }
  }

  // --- settings ----------------------------------------------------------------------------------------------
  var form = $("cb-settings");
  var fields = ["name", "welcome_message", "system_prompt", "answer_language", "teaching_mode", "temperature",
    "max_answer_tokens", "model_key", "uncovered_behaviour", "pause_message"];
  function loadSettings() {
    call(api + "/settings").then(function (body) {
      state.settings = body.settings;
      state.templates = body.templates;
      var models = form.elements.model_key;
      models.textContent = "";
      body.models.forEach(function (m) {
        models.appendChild(el("option", { value: m.key }, m.extractive ? t.model_extractive : m.label));
      });
      fields.forEach(function (name) { form.elements[name].value = body.settings[name]; });
      form.elements.paused.checked = body.settings.paused;
      loadVersions();
    }, function (e) { say(e.message); });
  }
  form.elements.teaching_mode.addEventListener("change", function () {
    var texts = state.templates[form.elements.teaching_mode.value];
    if (texts) { form.elements.system_prompt.value = texts[main.dataset.lang] || texts.en; }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = {};
    fields.forEach(function (name) { body[name] = form.elements[name].value; });
    body.temperature = Number(body.temperature);
    body.max_answer_tokens = Number(body.max_answer_tokens);
    body.paused = form.elements.paused.checked;
    call(api + "/settings", json("PUT", body)).then(function (result) {
      state.settings = result.settings;
      say(t.saved);
      loadVersions();
    }, function (e) { say(t.save_failed + " " + e.message); });
  });

  function loadVersions() {
    call(api + "/settings/prompts").then(function (body) {
      var list = $("cb-versions");
      list.textContent = "";
      if (!body.versions.length) { list.appendChild(el("li", {}, t.no_versions)); }
      body.versions.forEach(function (v) {
        var item = el("li", {});
        item.appendChild(el("span", {}, new Date(v.created_at).toLocaleString(main.dataset.lang) + " — " + (t["role_" + v.role] || v.role) + " — "));
        item.appendChild(el("q", { "data-user-content": "" }, v.prompt.slice(0, 80)));  // the teacher's own words
        var diff = el("button", { type: "button", class: "cb-btn cb-small cb-secondary" }, t.show_diff);
        diff.addEventListener("click", function () { showDiff(v.prompt, form.elements.system_prompt.value); });
        var restore = el("button", { type: "button", class: "cb-btn cb-small cb-secondary" }, t.restore);
        restore.addEventListener("click", function () {
          form.elements.system_prompt.value = v.prompt;
          form.elements.system_prompt.focus();
        });
        item.appendChild(diff);
        item.appendChild(restore);
        list.appendChild(item);
      });
    });
  }

  function showDiff(old, current) {
    var a = old.split("\n"), b = current.split("\n"), box = $("cb-diff");
    box.textContent = "";
    a.forEach(function (line) { if (b.indexOf(line) < 0) { box.appendChild(el("div", { class: "cb-del", "data-user-content": "" }, "− " + line)); } });
    b.forEach(function (line) { if (a.indexOf(line) < 0) { box.appendChild(el("div", { class: "cb-ins", "data-user-content": "" }, "+ " + line)); } });
    if (!box.childNodes.length) { box.appendChild(el("div", {}, "=")); }
    box.hidden = false;
  }

  // --- materials ---------------------------------------------------------------------------------------------
  function loadMaterials() {
    return call(api + "/materials").then(function (body) { renderMaterials(body.materials); }, function (e) { say(e.message); });
  }
  function statusText(m) {
    var text = t["status_" + m.status] || m.status;
    if (m.status === "failed" && m.error) { text += ": " + m.error.message; }
    return text;
  }
  // A file name may wrap after - _ . (and inside a very long part), never in the middle of a short word.
  function fileName(name) {
    var cell = el("th", { scope: "row", role: "rowheader" });
    var span = el("span", { class: "cb-fname" });
    String(name).split(/(?<=[-_.])/).forEach(function (part, index) {
      if (index) { span.appendChild(document.createElement("wbr")); }
      span.appendChild(document.createTextNode(part));
    });
    cell.appendChild(span);
    return cell;
  }
  function nb(text) { return text.replace(/^(\d+) /, "$1\u00a0"); }  // "24 Abschnitte" stays on one line
  function count(kind, n) { return nb(fmt(t["count_" + kind + (n === 1 ? "_one" : "_other")], { n: n })); }
  // What a file gives the bot, in words: "43 Seiten, 24 Abschnitte", and the teacher's page edits.
  function contribution(m) {
    var cell = el("td", { role: "cell", "data-label": t.contributes });
    if (m.status !== "ready") { return cell; }
    var slides = /presentation/.test(m.media_type || "");
    var parts = m.pages ? [count(slides ? "slides" : "pages", m.pages)] : [];
    parts.push(count("passages", m.chunks));
    cell.appendChild(el("span", {}, parts.join(", ")));
    var edits = m.page_edits || {};
    var done = [];
    if (edits.excluded) { done.push(nb(fmt(t.count_excluded, { n: edits.excluded }))); }
    if (edits.replaced) { done.push(nb(fmt(t.count_replaced, { n: edits.replaced }))); }
    if (done.length) { cell.appendChild(el("span", { class: "cb-contrib-extra" }, done.join(", "))); }
    if (edits.to_review) { cell.appendChild(el("span", { class: "cb-contrib-review" }, fmt(t.count_to_review, { n: edits.to_review }))); }
    return cell;
  }
  function openPages(m) {
    CB.openMaterialPages(m, { api: api, call: call, say: say, onChange: loadMaterials, fallbackFocus: function () {
      var again = document.querySelector('[data-pages="' + m.id + '"]');
      (again || $("m-files")).focus();
    } });
  }
  function renderMaterials(items) {
    var body = $("cb-materials");
    // The table is redrawn while files are processed: a keyboard user's focus stays on the same control.
    var focused = document.activeElement && body.contains(document.activeElement)
      ? document.activeElement.getAttribute("aria-label") : null;
    body.textContent = "";
    $("cb-materials-empty").hidden = items.length > 0;
    var active = false;
    items.forEach(function (m) {
      var row = el("tr", { "data-material": String(m.id), role: "row" });
      row.appendChild(fileName(m.filename));
      var statusCell = el("td", { class: "cb-mstatus", role: "cell", "data-label": t.status }, statusText(m));
      if (m.status !== "ready" && m.status !== "failed") {
        active = true;
        var bar = el("progress", { max: String(m.progress.total || 1), value: String(m.progress.done || 0), "aria-label": m.filename });
        statusCell.appendChild(el("br", {}));
        statusCell.appendChild(bar);
      }
      row.appendChild(statusCell);
      row.appendChild(contribution(m));
      var openCell = el("td", { role: "cell", "data-label": t.students_may_open });
      var box = el("input", { type: "checkbox", "aria-label": t.students_may_open + ": " + m.filename });
      box.checked = m.students_may_open;
      box.addEventListener("change", function () {
        call(api + "/materials/" + m.id, json("PATCH", { students_may_open: box.checked })).then(null, function (e) { say(e.message); });
      });
      openCell.appendChild(box);
      row.appendChild(openCell);
      var actions = el("td", { role: "cell", class: "cb-mactions" });
      if (m.status !== "failed") {
        var pages = el("button", { type: "button", class: "cb-btn cb-small cb-secondary", "data-pages": String(m.id),
          "aria-label": t.view_pages + ": " + m.filename }, t.view_pages);
        pages.addEventListener("click", function () { openPages(m); });
        actions.appendChild(pages);
      }
      var reindex = el("button", { type: "button", class: "cb-btn cb-small cb-secondary", "aria-label": t.reindex + ": " + m.filename }, t.reindex);
      reindex.addEventListener("click", function () { call(api + "/materials/" + m.id + "/reindex", { method: "POST" }).then(loadMaterials); });
      var remove = el("button", { type: "button", class: "cb-btn cb-small cb-danger", "aria-label": t.delete + ": " + m.filename }, t.delete);
      remove.addEventListener("click", function () {
        if (!window.confirm(t.confirm_delete_material)) { return; }
        call(api + "/materials/" + m.id, { method: "DELETE" }).then(function () { loadMaterials().then(function () { $("m-files").focus(); }); });
      });
      actions.appendChild(reindex);
      actions.appendChild(remove);
      row.appendChild(actions);
      body.appendChild(row);
    });
    if (focused) {
      var again = Array.prototype.filter.call(body.querySelectorAll("[aria-label]"), function (node) {
        return node.getAttribute("aria-label") === focused;
      })[0];
      if (again) { again.focus(); }
    }
    clearTimeout(state.polling);
    if (active) { state.polling = setTimeout(loadMaterials, 1500); }
  }

  function upload(files) {
    Array.prototype.forEach.call(files, function (file) {
      var row = el("tr", { role: "row" });
      row.appendChild(fileName(file.name));
      var cell = el("td", {}, t.status_uploading);
      var bar = el("progress", { max: "100", value: "0", "aria-label": file.name });
      cell.appendChild(el("br", {}));
      cell.appendChild(bar);
      row.appendChild(cell);
      $("cb-materials").appendChild(row);
      $("cb-materials-empty").hidden = true;
      // XMLHttpRequest, because fetch cannot report upload progress.
      var xhr = new XMLHttpRequest();
      xhr.open("POST", api + "/materials");
      xhr.setRequestHeader("Authorization", "Bearer " + CB.token());
      xhr.upload.onprogress = function (event) { if (event.lengthComputable) { bar.value = Math.round(100 * event.loaded / event.total); } };
      xhr.onload = function () {
        if (xhr.status >= 400) {
          var message = xhr.status;
          try { message = JSON.parse(xhr.responseText).error.message; } catch (e) { /* keep the status */ }
          cell.textContent = t.status_failed + ": " + message;
          return;
        }
        loadMaterials();
      };
      xhr.onerror = function () { cell.textContent = t.status_failed; };
      var data = new FormData();
      data.append("file", file);
      xhr.send(data);
    });
  }
  $("cb-upload").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = $("m-files");
    if (input.files.length) { upload(input.files); input.value = ""; }
  });
  var drop = $("cb-upload");
  drop.addEventListener("dragover", function (event) { event.preventDefault(); drop.classList.add("cb-over"); });
  drop.addEventListener("dragleave", function () { drop.classList.remove("cb-over"); });
  drop.addEventListener("drop", function (event) {
    event.preventDefault();
    drop.classList.remove("cb-over");
    upload(event.dataTransfer.files);
  });
  $("m-reindex-all").addEventListener("click", function () { call(api + "/materials/reindex", { method: "POST" }).then(loadMaterials); });

  // --- preview -----------------------------------------------------------------------------------------------
  $("cb-preview-start").addEventListener("click", function () {
    call(api + "/preview", { method: "POST" }).then(function (body) {
      var token = body.token;
      var previewFetch = function (url, options) {
        options = options || {};
        var headers = new Headers(options.headers || {});
        headers.set("Authorization", "Bearer " + token);
        options.headers = headers;
        return fetch(url, options);
      };
      $("cb-preview-area").hidden = false;
      $("cb-preview-start").hidden = true;
      CB.mountChat(document.querySelector('[data-chat="pv"]'), { fetch: previewFetch, botId: botId, preview: true, t: t });
      $("pv-question").focus();
    }, function (e) { say(e.message); });
  });

  // --- logs & usage ------------------------------------------------------------------------------------------
  function loadLogs() {
    var query = new URLSearchParams();
    if ($("l-filter").value) { query.set("only", $("l-filter").value); }
    if ($("l-role").value) { query.set("role", $("l-role").value); }
    if ($("l-since").value) { query.set("since", $("l-since").value + "T00:00:00+00:00"); }
    if ($("l-until").value) { query.set("until", $("l-until").value + "T23:59:59+00:00"); }
    call(api + "/logs?" + query.toString()).then(function (body) {
      $("cb-totals").textContent = fmt(t.totals, body);
      loadUsageChart();
      $("cb-logs-closed").hidden = body.open;
      $("cb-logs-open").hidden = !body.open;
      $("cb-logs-closed-text").textContent = fmt(t.logs_closed_text, body);
      var box = $("cb-logs");
      box.textContent = "";
      (body.items || []).forEach(function (c) { box.appendChild(logItem(c)); });
      if (body.open && !(body.items || []).length) { box.appendChild(el("p", {}, t.no_data)); }
    }, function (e) { say(e.message); });
  }
  ["l-filter", "l-role", "l-since", "l-until"].forEach(function (id) { $(id).addEventListener("change", loadLogs); });

  function participantLabel(c) {
    // The server's label ("Student 17") is English; the catalogue words it in the page's language.
    var role = c.role === "learner" || c.role === "instructor" ? c.role : "other";
    if (!c.participant_number) { return t["participant_anon_" + role]; }
    return fmt(t["participant_" + role], { n: c.participant_number });
  }

  function logItem(c) {
    var item = el("article", { class: "cb-log-item" });
    item.appendChild(el("h3", {}, participantLabel(c) + " · " + new Date(c.updated_at).toLocaleString(main.dataset.lang)));
    var questionText = "";
    c.messages.forEach(function (m) {
      var p = el("p", { class: m.role === "user" ? "cb-text" : "cb-text cb-muted" });
      p.appendChild(el("strong", {}, (m.role === "user" ? t.faq_question : t.assistant) + ": "));
      // What participants and the assistant wrote is in their language, not the page's: marked for tests and tools.
      if (m.text) { p.appendChild(el("span", { "data-user-content": "" }, m.text)); }
      else { p.appendChild(document.createTextNode(m.status === "failed" ? t.status_failed : "")); }
      if (m.feedback) { p.appendChild(el("span", {}, " [" + (m.feedback.value === "up" ? t.filter_up : t.filter_down) + (m.feedback.comment ? " " + m.feedback.comment : "") + "]")); }
      item.appendChild(p);
      if (m.role === "user") { questionText = m.text; }
    });
    var correct = el("button", { type: "button", class: "cb-btn cb-small cb-secondary" }, t.correct);
    correct.addEventListener("click", function () {
      $("f-question").value = questionText;
      select(document.getElementById("tab-faq"), true);
      $("f-answer").focus();
    });
    item.appendChild(correct);
    if (questionText && CB.useAsTestQuestion) {  // the stored (scrubbed) text only: no pseudonym, no message id
      var asTest = el("button", { type: "button", class: "cb-btn cb-small cb-secondary" }, t.tq_take);
      asTest.addEventListener("click", function () {
        select(document.getElementById("tab-tests"), false);
        CB.useAsTestQuestion(questionText);
      });
      item.appendChild(document.createTextNode(" "));
      item.appendChild(asTest);
    }
    return item;
  }

  function loadUsageChart() {  // questions, answers and errors per day over 30 days (charts.js), with its table
    call(api + "/usage/daily?days=30").then(function (body) {
      CB.chart($("cb-chart"), { title: t.questions_per_day, showTitle: false, lang: main.dataset.lang, rows: body.days,
        series: [{ key: "questions", label: t.usage_questions }, { key: "answers", label: t.usage_answers },
                 { key: "errors", label: t.usage_errors }],
        dateLabel: t.chart_date, tableLabel: t.chart_show_table, empty: t.no_data });
    }, function (e) { say(e.message); });
  }

  document.querySelectorAll("[data-export]").forEach(function (button) {
    button.addEventListener("click", function () {
      var format = button.dataset.export;
      CB.fetch(api + "/logs/export?format=" + format).then(function (response) {
        if (!response.ok) { return response.json().then(function (b) { throw b.error; }); }
        return response.blob().then(function (blob) {
          var link = el("a", { href: URL.createObjectURL(blob), download: "coursebots-logs-" + botId + "." + format });
          document.body.appendChild(link);
          link.click();
          link.remove();
        });
      }).catch(function (e) { say(e && e.message); });
    });
  });

  // --- corrections & FAQ -------------------------------------------------------------------------------------
  function loadFaq() {
    call(api + "/faq").then(function (body) {
      var list = $("cb-faq");
      list.textContent = "";
      var entries = body.faq || body.entries || [];
      if (!entries.length) { list.appendChild(el("li", {}, t.faq_empty)); }
      entries.forEach(function (entry) {
        var item = el("li", {});
        item.appendChild(el("strong", {}, entry.question));
        item.appendChild(el("p", { class: "cb-text" }, entry.answer));
        var remove = el("button", { type: "button", class: "cb-btn cb-small cb-danger", "aria-label": t.delete + ": " + entry.question }, t.delete);
        remove.addEventListener("click", function () { call(api + "/faq/" + entry.id, { method: "DELETE" }).then(loadFaq); });
        item.appendChild(remove);
        list.appendChild(item);
      });
    }, function (e) { say(e.message); });
  }
  $("cb-faq-form").addEventListener("submit", function (event) {
    event.preventDefault();
    call(api + "/faq", json("POST", { question: $("f-question").value, answer: $("f-answer").value })).then(function () {
      $("f-question").value = "";
      $("f-answer").value = "";
      say(t.faq_saved);
      loadFaq();
    }, function (e) { say(e.message); });
  });

  // --- new semester & delete ---------------------------------------------------------------------------------
  $("cb-gen-code").addEventListener("click", function () {
    call(api + "/copy-code", { method: "POST" }).then(function (body) {
      $("cb-code").textContent = body.code;
      $("cb-code-valid").textContent = fmt(t.code_valid_until, { time: new Date(body.expires_at).toLocaleString(main.dataset.lang) });
      $("cb-code-out").hidden = false;
    }, function (e) { say(e.message); });
  });
  $("cb-copy-form").addEventListener("submit", function (event) {
    event.preventDefault();
    call(api + "/copy-from", json("POST", { code: $("c-code").value })).then(function () { say(t.copy_done); loadSettings(); },
      function (e) { say(e.message); });
  });
  $("cb-delete-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var word = $("d-confirm").value.trim().toUpperCase();
    if (word !== "DELETE" && word !== "LÖSCHEN") { $("d-confirm").focus(); return; }
    call(api, json("DELETE", { confirm: "delete" })).then(function () { say(t.deleted); }, function (e) { say(e.message); });
  });

  loadSettings();
})();

// The teacher's "Test questions" tab: questions with the file (and page) that should answer them, a sentence per
// question from the newest background check, and one history line per check. Text goes in with textContent only.
(function () {
  "use strict";
  var CB = window.CourseBots;
  var main = document.getElementById("main");
  if (!CB || !main || main.dataset.page !== "teacher") { return; }
  var t = CB.catalogue();
  var el = CB.el, fmt = CB.fmt;
  var api = "/api/v1/bots/" + main.dataset.bot + "/test-questions";
  var $ = function (id) { return document.getElementById(id); };
  var state = { source: "teacher", polling: null, data: null };

  function call(url, options) {
    return CB.fetch(url, options).then(function (response) {
      if (response.status === 204) { return {}; }
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) { throw (body && body.error) || { message: String(response.status) }; }
        return body;
      });
    });
  }
  function say(text) { $("cb-teacher-status").textContent = text || ""; }
  function visible() { return !$("panel-tests").hidden; }
  function when(iso) { return iso ? new Date(iso).toLocaleString(main.dataset.lang) : ""; }

  // One plain sentence per question: where the expected source ranks, and whether the bot would answer.
  function sentence(r) {
    var values = { file: r.expected_file, page: r.expected_page, rank: r.rank };
    var paged = r.expected_page !== null && r.expected_page !== undefined;
    var text;
    if (r.rank === 1) { text = fmt(paged ? t.tq_found_best_page : t.tq_found_best_file, values); }
    else if (r.rank && r.rank <= 5) { text = fmt(paged ? t.tq_found_rank_page : t.tq_found_rank_file, values); }
    else if (r.file_missing) { text = fmt(t.tq_missing_file, values); }
    else { text = fmt(paged ? t.tq_missed_page : t.tq_missed_file, values); }
    text += r.would_answer ? t.tq_would_answer : t.tq_would_refuse;
    if ((!r.rank || r.rank > 5) && r.best && r.best.file) {
      var hasPage = r.best.page !== null && r.best.page !== undefined;
      text += " " + fmt(hasPage ? t.tq_best_page : t.tq_best_file, r.best);
    }
    return text;
  }

  function historyLine(run) {
    var line = fmt(run.previous_found === null ? t.tq_history_line_first : t.tq_history_line,
      { found: run.found_5, total: run.total, previous: run.previous_found });
    line = when(run.finished_at) + ": " + line + " – " + (t["tq_reason_" + run.reason] || run.reason);
    if (run.previous_found !== null && run.previous_total === run.total) {
      line += ", " + (run.found_5 > run.previous_found ? t.tq_better : run.found_5 < run.previous_found ? t.tq_worse : t.tq_same);
    }
    return line + ".";
  }

  function renderFiles(files) {
    var select = $("tq-file"), chosen = select.value;
    select.textContent = "";
    files.forEach(function (name) { select.appendChild(el("option", { value: name }, name)); });
    if (files.indexOf(chosen) >= 0) { select.value = chosen; }
    $("tq-no-files").hidden = files.length > 0;
  }

  function render(data) {
    state.data = data;
    renderFiles(data.files || []);
    var results = {};
    ((data.latest && data.latest.results) || []).forEach(function (r) { results[r.question_id] = r; });
    var list = $("tq-list");
    list.textContent = "";
    if (!data.questions.length) { list.appendChild(el("li", {}, t.tq_empty)); }
    data.questions.forEach(function (q) {
      var item = el("li", { class: "cb-tq-item" });
      var head = el("p", { class: "cb-text" });
      head.appendChild(el("strong", {}, q.question));
      if (q.source === "student_log") { head.appendChild(el("span", { class: "cb-muted" }, " (" + t.tq_label_from_log + ")")); }
      item.appendChild(head);
      var result = results[q.id];
      item.appendChild(el("p", { class: result ? (result.rank && result.rank <= 5 ? "cb-tq-found" : "cb-tq-missed") : "cb-muted" },
        result ? sentence(result) : t.tq_not_checked));
      var remove = el("button", { type: "button", class: "cb-btn cb-small cb-secondary", "aria-label": fmt(t.tq_delete, { question: q.question }) }, t.delete);
      remove.addEventListener("click", function () {
        call(api + "/" + q.id, { method: "DELETE" }).then(function () { say(t.tq_deleted); load().then(function () { $("tq-question").focus(); }); },
          function (e) { say(e.message); });
      });
      item.appendChild(remove);
      list.appendChild(item);
    });
    $("tq-state").textContent = data.pending ? t.tq_checking
      : data.latest ? fmt(t.tq_checked, { time: when(data.latest.finished_at), answered: data.latest.answered, total: data.latest.total }) : "";
    var history = $("tq-history");
    history.textContent = "";
    if (!data.history.length) { history.appendChild(el("li", {}, t.tq_history_empty)); }
    data.history.forEach(function (run) { history.appendChild(el("li", {}, historyLine(run))); });
    clearTimeout(state.polling);
    // while a check is coming, look every 2 seconds; otherwise now and then (a change elsewhere starts one)
    if (visible()) { state.polling = setTimeout(load, data.pending ? 2000 : 20000); }
  }

  function load() {
    return call(api).then(render, function (e) { say(e.message); });
  }

  $("tq-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var page = $("tq-page").value.trim();
    var body = { question: $("tq-question").value, expected_file: $("tq-file").value,
      expected_page: page ? parseInt(page, 10) : null, source: state.source };
    call(api, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }).then(function () {
      $("tq-question").value = "";
      $("tq-page").value = "";
      state.source = "teacher";
      $("tq-source-note").hidden = true;
      say(t.tq_added);
      load().then(function () { $("tq-question").focus(); });
    }, function (e) { say(e.message); });
  });

  CB.loadTestQuestions = load;
  // From the logs tab: the stored question's (already scrubbed) text becomes the teacher's own test question.
  CB.useAsTestQuestion = function (text) {
    load().then(function () {
      $("tq-question").value = text;
      state.source = "student_log";
      $("tq-source-note").hidden = false;
      $("tq-file").focus();
    });
  };
})();

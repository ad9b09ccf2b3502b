// The teacher's view of one file as the bot read it: page by page (slide, part), the passages the search uses, and
// the teacher's exclusions and replacements (and an earlier version's edits to keep or drop). teacher.js opens it
// from the materials table with CourseBots.openMaterialPages(material, options).
// Every text here (the file's, the teacher's, the passages) is inserted with textContent only.
(function () {
  "use strict";
  var CB = window.CourseBots;
  var main = document.getElementById("main");
  if (!CB || !main || main.dataset.page !== "teacher") { return; }
  var t = CB.catalogue();
  var el = CB.el, fmt = CB.fmt;
  var view = { material: null, options: null, body: null, polling: null, editing: null };

  function box() { return document.getElementById("cb-pages"); }

  function pageLabel(locator, number) {
    var key = locator === "slide" ? "slide_n" : (locator === "section" ? "section_n" : "page_n");
    return fmt(t[key], { n: number });
  }

  function url(suffix) { return view.options.api + "/materials/" + view.material.id + "/pages" + (suffix || ""); }

  function load() {
    return view.options.call(url()).then(show, function (e) { view.options.say(e.message); });
  }

  function send(number, method, body, message) {
    var pressed = document.activeElement && document.activeElement.getAttribute("data-key");
    return view.options.call(url("/" + number), {
      method: method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (result) {
      view.editing = null;
      show(result.pages, pressed || "page-" + number);  // the same control, else the page's heading
      view.options.say(message);
      if (view.options.onChange) { view.options.onChange(); }
    }, function (e) { view.options.say(e.message); });
  }

  // --- rendering ---------------------------------------------------------------------------------------------
  function textBlock(text, extra) {
    return el("div", { class: "cb-text cb-page-text" + (extra ? " " + extra : "") }, text);
  }

  function button(label, key, onClick, kind) {
    var node = el("button", { type: "button", class: "cb-btn cb-small " + (kind || "cb-secondary"), "data-key": key }, label);
    node.addEventListener("click", onClick);
    return node;
  }

  function editor(page, label) {
    var id = "cb-page-editor-" + page.number;
    var form = el("form", { class: "cb-page-editor" });
    form.appendChild(el("label", { for: id }, fmt(t.page_text_label, { page: label })));
    var area = el("textarea", { id: id, rows: "8", maxlength: "20000", "data-key": "editor-" + page.number });
    area.value = page.edit && page.edit.replacement !== null ? page.edit.replacement : page.text;
    form.appendChild(area);
    var row = el("p", { class: "cb-row" });
    row.appendChild(el("button", { type: "submit", class: "cb-btn cb-small", "data-key": "save-" + page.number }, t.page_save));
    row.appendChild(button(t.page_cancel, "cancel-" + page.number, function () {
      view.editing = null;
      show(view.body, "replace-" + page.number);
    }));
    form.appendChild(row);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send(page.number, "PUT", { excluded: false, replacement: area.value }, t.page_saved);
    });
    area.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { event.preventDefault(); view.editing = null; show(view.body, "replace-" + page.number); }
    });
    return form;
  }

  function previousBox(page, label) {
    var before = page.previous_edit;
    var notice = el("div", { class: "cb-notice cb-page-previous", role: "group", "aria-label": t.page_previous + " – " + label });
    notice.appendChild(el("h4", {}, t.page_previous));
    if (before.excluded) {
      notice.appendChild(el("p", {}, t.page_previous_excluded));
    } else {
      notice.appendChild(el("p", {}, t.page_previous_replaced));
      notice.appendChild(textBlock(before.replacement || ""));
    }
    notice.appendChild(el("p", { class: "cb-hint" }, before.text_unchanged ? t.page_previous_same : t.page_previous_changed));
    var row = el("p", { class: "cb-row" });
    row.appendChild(button(t.page_keep, "keep-" + page.number, function () { send(page.number, "PATCH", { keep: true }, t.page_saved); }, "cb-primary"));
    row.appendChild(button(t.page_drop, "drop-" + page.number, function () { send(page.number, "PATCH", { keep: false }, t.page_dropped); }));
    notice.appendChild(row);
    return notice;
  }

  function pageItem(page, locator) {
    var label = pageLabel(locator, page.number);
    var excluded = !!(page.edit && page.edit.excluded);
    var replaced = !!(page.edit && !excluded && page.edit.replacement !== null);
    var headingId = "cb-page-" + page.number + "-h";
    var item = el("article", { class: "cb-page" + (excluded ? " cb-page-excluded" : ""), "data-page-number": String(page.number),
      "aria-labelledby": headingId });
    var heading = el("h3", { id: headingId, tabindex: "-1", "data-key": "page-" + page.number }, label);
    item.appendChild(heading);
    if (page.heading) { item.appendChild(el("p", { class: "cb-hint cb-page-heading" }, page.heading)); }
    if (excluded) { item.appendChild(el("p", { class: "cb-page-state" }, t.page_excluded)); }
    if (replaced) { item.appendChild(el("p", { class: "cb-page-state" }, t.page_edited)); }
    if (page.previous_edit) { item.appendChild(previousBox(page, label)); }
    if (view.editing === page.number) {
      item.appendChild(editor(page, label));
    } else if (replaced) {
      item.appendChild(el("h4", {}, t.page_your_text));
      item.appendChild(textBlock(page.edit.replacement));
      var original = el("details", {});
      original.appendChild(el("summary", {}, t.page_original));
      original.appendChild(textBlock(page.text));
      item.appendChild(original);
    } else {
      item.appendChild(textBlock(page.text, excluded ? "cb-muted" : ""));
    }
    if (!excluded) {
      if (page.passages.length) {
        var passages = el("details", { class: "cb-page-passages" });
        passages.appendChild(el("summary", {}, fmt(t.page_passages, { n: page.passages.length })));
        var list = el("ol", {});
        page.passages.forEach(function (p) { list.appendChild(el("li", { class: "cb-text" }, p.text)); });
        passages.appendChild(list);
        item.appendChild(passages);
      } else {
        item.appendChild(el("p", { class: "cb-hint" }, t.page_no_passages));
      }
    }
    if (view.editing !== page.number) {
      var actions = el("p", { class: "cb-row cb-page-actions" });
      actions.appendChild(excluded
        ? button(t.page_include, "exclude-" + page.number, function () { send(page.number, "PUT", { excluded: false, replacement: null }, t.page_saved); })
        : button(t.page_exclude, "exclude-" + page.number, function () {
          send(page.number, "PUT", { excluded: true, replacement: null }, t.page_saved);
        }));
      if (!excluded) {
        actions.appendChild(button(replaced ? t.page_edit_text : t.page_replace, "replace-" + page.number, function () {
          view.editing = page.number;
          show(view.body, "editor-" + page.number);
        }));
      }
      if (replaced) {
        actions.appendChild(button(t.page_restore, "restore-" + page.number, function () {
          send(page.number, "PUT", { excluded: false, replacement: null }, t.page_saved);
        }));
      }
      item.appendChild(actions);
    }
    return item;
  }

  function show(body, focusKey) {
    view.body = body;
    var container = box();
    var active = document.activeElement;
    var keep = focusKey || (active && container.contains(active) ? active.getAttribute("data-key") : null);
    var list = document.getElementById("cb-pages-list");
    list.textContent = "";
    var busy = body.status !== "ready" && body.status !== "failed";
    document.getElementById("cb-pages-busy").hidden = !busy;
    if (!body.available && !busy) {  // indexed before pages were kept: one re-index shows them
      list.appendChild(el("p", {}, t.pages_unavailable));
      list.appendChild(el("p", {})).appendChild(button(t.reindex, "reindex", function () {
        view.options.call(view.options.api + "/materials/" + view.material.id + "/reindex", { method: "POST" })
          .then(function () { if (view.options.onChange) { view.options.onChange(); } return load(); },
            function (e) { view.options.say(e.message); });
      }));
    }
    body.pages.forEach(function (page) { list.appendChild(pageItem(page, body.locator)); });
    (body.previous_without_page || []).forEach(function (orphan) {
      var notice = el("div", { class: "cb-notice" });
      notice.appendChild(el("p", {}, fmt(t.page_previous_orphan, { page: pageLabel(body.locator, orphan.number) })));
      notice.appendChild(orphan.excluded ? el("p", {}, t.page_previous_excluded) : textBlock(orphan.replacement || ""));
      notice.appendChild(button(t.page_drop, "drop-" + orphan.number, function () {
        send(orphan.number, "PATCH", { keep: false }, t.page_dropped);
      }));
      list.appendChild(notice);
    });
    if (keep) {
      var target = container.querySelector('[data-key="' + keep + '"]');
      if (!target && /^[a-z]+-\d+$/.test(keep)) { target = container.querySelector('[data-key="page-' + keep.split("-")[1] + '"]'); }
      if (target) { target.focus(); }
    }
    clearTimeout(view.polling);
    if (busy) { view.polling = setTimeout(poll, 1500); }
  }

  function poll() {
    if (box().hidden) { return; }
    if (view.editing !== null) { view.polling = setTimeout(poll, 1500); return; }
    view.options.call(url()).then(function (body) { show(body); }, function () { view.polling = setTimeout(poll, 3000); });
  }

  function close() {
    clearTimeout(view.polling);
    box().hidden = true;
    view.editing = null;
    if (view.options && view.options.returnFocus && document.body.contains(view.options.returnFocus)) {
      view.options.returnFocus.focus();
    } else if (view.options && view.options.fallbackFocus) {
      view.options.fallbackFocus();
    }
  }

  function frame() {
    var container = box();
    if (container.dataset.ready) { return; }
    container.dataset.ready = "1";
    container.appendChild(el("h2", { id: "cb-pages-title", tabindex: "-1" }));
    container.appendChild(el("p", { class: "cb-hint" }, t.pages_intro));
    var closeButton = button(t.pages_close, "close", close);
    container.appendChild(el("p", {})).appendChild(closeButton);
    container.appendChild(el("p", { id: "cb-pages-busy", role: "status", hidden: "" }, t.pages_reindexing));
    container.appendChild(el("div", { id: "cb-pages-list" }));
    container.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && view.editing === null) { close(); }
    });
  }

  // options: api, call(url, init) -> Promise of JSON, say(text), onChange(), returnFocus (element), fallbackFocus()
  CB.openMaterialPages = function (material, options) {
    view.material = material;
    view.options = options;
    view.editing = null;
    frame();
    var container = box();
    container.setAttribute("aria-labelledby", "cb-pages-title");
    document.getElementById("cb-pages-title").textContent = fmt(t.pages_title, { file: material.filename });
    document.getElementById("cb-pages-list").textContent = "";
    container.hidden = false;
    document.getElementById("cb-pages-title").focus();
    return load();
  };
  CB.closeMaterialPages = close;
})();

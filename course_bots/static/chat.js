// The chat component (student page and the teacher's preview): streamed answers via fetch, citations, history.
// Safety rule: text from questions and streamed tokens is only ever set with textContent; the one HTML insertion
// is the `done` event's html, which the server rendered and sanitized with its single allowlist.
(function () {
  "use strict";

  function catalogue() {
    var node = document.getElementById("cb-i18n");
    return node ? JSON.parse(node.textContent) : {};
  }

  function fmt(text, values) {
    return String(text || "").replace(/\{(\w+)\}/g, function (_, key) { return values[key] !== undefined ? values[key] : ""; });
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "class") { node.className = attrs[key]; } else { node.setAttribute(key, attrs[key]); }
    });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function newId() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return "q" + Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }

  // Parses a text/event-stream body into {event, data} objects, calling onEvent for each as it arrives.
  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) { return; }
        buffer += decoder.decode(chunk.value, { stream: true });
        var parts = buffer.split("\n\n");
        buffer = parts.pop();
        parts.forEach(function (block) {
          var name = "message";
          var data = "";
          block.split("\n").forEach(function (line) {
            if (line.indexOf("event: ") === 0) { name = line.slice(7); }
            if (line.indexOf("data: ") === 0) { data += line.slice(6); }
          });
          if (data) { onEvent(name, JSON.parse(data)); }
        });
        return pump();
      });
    }
    return pump();
  }

  function mountChat(root, options) {
    var t = options.t || catalogue();
    var api = "/api/v1/bots/" + options.botId;
    var authFetch = options.fetch;
    var q = function (name) { return root.querySelector('[data-cb="' + name + '"]'); };
    var state = { conversationId: null, controller: null, busy: false, citations: {}, lastCite: null };
    var log = q("log"), form = q("form"), question = q("question"), status = q("status"), announce = q("announce");
    var send = q("send"), stop = q("stop"), scroller = q("scroll");

    function setStatus(text) { status.textContent = text || ""; }

    function jsonOrError(response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) {
          var error = (body && body.error) || { code: "http_" + response.status, message: t.error_generic };
          error.status = response.status;
          throw error;
        }
        return body;
      });
    }

    // The conversation scrolls, the question box stays below it: keep the newest text in view while the reader
    // has not scrolled up to read something earlier.
    function nearBottom() { return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80; }
    function toBottom() { scroller.scrollTop = scroller.scrollHeight; }

    function growInput() {
      question.style.height = "auto";
      var max = Math.max(72, Math.round(window.innerHeight * 0.35));
      question.style.height = Math.min(question.scrollHeight + 2, max) + "px";
      question.style.overflowY = question.scrollHeight + 2 > max ? "auto" : "hidden";
    }
    question.addEventListener("input", growInput);

    function addQuestion(text) {
      var item = el("li", { class: "cb-msg cb-user" });
      item.appendChild(el("span", { class: "cb-who" }, t.you));
      item.appendChild(el("p", { class: "cb-text" }, text));
      log.appendChild(item);
      toBottom();
      return item;
    }

    function addAnswerShell() {
      var item = el("li", { class: "cb-msg cb-assistant", "aria-busy": "true" });
      item.appendChild(el("span", { class: "cb-who" }, t.assistant));
      var body = el("div", { class: "cb-answer" });
      var live = el("p", { class: "cb-streaming" });
      body.appendChild(live);
      item.appendChild(body);
      log.appendChild(item);
      toBottom();
      return { item: item, body: body, live: live };
    }

    function copyText(text, message) {
      var done = function () { setStatus(message); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, done);
      } else { done(); }
    }

    // Every code block (answers and quoted passages) gets its own copy button.
    function codeTools(container) {
      container.querySelectorAll("pre").forEach(function (pre) {
        if (pre.parentNode && pre.parentNode.classList && pre.parentNode.classList.contains("cb-code-block")) { return; }
        var wrap = el("div", { class: "cb-code-block" });
        pre.parentNode.insertBefore(wrap, pre);
        wrap.appendChild(pre);
        pre.setAttribute("tabindex", "0");  // scrollable code can be scrolled with the keyboard
        var button = el("button", { type: "button", class: "cb-btn cb-small cb-secondary cb-copy-code" }, t.copy_code);
        button.addEventListener("click", function () { copyText(pre.textContent, t.code_copied); });
        wrap.appendChild(button);
      });
    }

    function finishAnswer(shell, data, quiet) {
      shell.item.setAttribute("aria-busy", "false");
      shell.body.innerHTML = data.html;  // server-rendered and sanitized (course_bots.render)
      state.citations[data.message_id] = data.citations || [];
      shell.item.dataset.message = data.message_id;
      shell.body.querySelectorAll("button.cb-cite").forEach(function (button) {
        button.setAttribute("aria-label", t.source + " " + button.dataset.cite);
        button.addEventListener("click", function () { openSources(data.message_id, Number(button.dataset.cite), button); });
      });
      codeTools(shell.body);
      shell.item.appendChild(answerTools(data.message_id, shell.body));
      if (!quiet) { announce.textContent = t.answer_complete + " " + shell.body.textContent; }  // once, when done
    }

    function showQuota(quota) {
      var box = q("quota");
      if (!box) { return; }
      var left = quota ? quota.questions_left : null;
      var limit = quota ? quota.limit : null;
      var warn = typeof left === "number" && left <= Math.max(3, typeof limit === "number" ? Math.floor(limit * 0.2) : 3);
      box.hidden = !warn;
      box.textContent = warn ? fmt(t.questions_left, { n: left }) : "";
    }

    function answerTools(messageId, body) {
      var tools = el("div", { class: "cb-tools" });
      var copy = el("button", { type: "button", class: "cb-btn cb-small cb-secondary" }, t.copy);
      copy.addEventListener("click", function () { copyText(body.textContent, t.copied); });
      var up = el("button", { type: "button", class: "cb-btn cb-small cb-secondary", "aria-pressed": "false" }, t.helpful);
      var down = el("button", { type: "button", class: "cb-btn cb-small cb-secondary", "aria-pressed": "false" }, t.not_helpful);
      var feedbackForm = el("form", { class: "cb-feedback", hidden: "" });
      var commentId = "cb-fb-" + messageId + "-" + Math.random().toString(36).slice(2, 7);
      feedbackForm.appendChild(el("label", { for: commentId }, t.feedback_comment));
      var comment = el("textarea", { id: commentId, rows: "2", maxlength: "2000" });
      feedbackForm.appendChild(comment);
      feedbackForm.appendChild(el("button", { type: "submit", class: "cb-btn cb-small" }, t.feedback_send));
      var value = null;
      function give(v) {
        value = v;
        up.setAttribute("aria-pressed", String(v === "up"));
        down.setAttribute("aria-pressed", String(v === "down"));
        feedbackForm.hidden = false;
        postFeedback(messageId, v, "");
      }
      up.addEventListener("click", function () { give("up"); });
      down.addEventListener("click", function () { give("down"); });
      feedbackForm.addEventListener("submit", function (event) {
        event.preventDefault();
        postFeedback(messageId, value || "down", comment.value).then(function () { feedbackForm.hidden = true; });
      });
      [copy, up, down, feedbackForm].forEach(function (node) { tools.appendChild(node); });
      return tools;
    }

    function postFeedback(messageId, value, comment) {
      return authFetch(api + "/messages/" + messageId + "/feedback", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ value: value, comment: comment })
      }).then(jsonOrError).then(function () { setStatus(t.feedback_thanks); }, function (e) { setStatus(e.message); });
    }

    // "Seite 44" or "Seiten 44–45": the panel names the same pages as the answer's citation label.
    function where(c) {
      if (!c.position) { return c.label; }
      var slide = c.locator === "slide";
      if (c.position_end && c.position_end !== c.position) {
        return (slide ? t.slide_range : t.page_range) + " " + c.position + "–" + c.position_end;
      }
      return (slide ? t.slide : t.page) + " " + c.position;
    }

    function openSources(messageId, number, opener) {
      var panel = q("sources"), list = q("sources-list");
      state.lastCite = opener;
      list.textContent = "";
      var render = function (citations) {
        citations.forEach(function (c) {
          var item = el("li", { class: "cb-source", value: String(c.number), id: root.dataset.chat + "-src-" + messageId + "-" + c.number });
          if (c.number === number) { item.classList.add("cb-current"); }
          item.appendChild(el("strong", {}, c.document_title));
          item.appendChild(el("span", { class: "cb-where" }, " — " + where(c)));
          var quote = el("blockquote", {});
          if (c.quote_html) { quote.innerHTML = c.quote_html; } else { quote.textContent = c.quote; }  // sanitized by the server
          item.appendChild(quote);
          codeTools(quote);
          if (c.file_url) {
            var link = el("a", { href: c.file_url, target: "_blank", rel: "noopener noreferrer" }, t.open_file);
            item.appendChild(link);
          }
          list.appendChild(item);
        });
        panel.hidden = false;
        panel.focus();
        var current = list.querySelector(".cb-current");
        if (current && current.scrollIntoView) { current.scrollIntoView({ block: "nearest" }); }
      };
      authFetch(api + "/messages/" + messageId + "/citations").then(jsonOrError)
        .then(function (body) { render(body.citations); }, function () { render(state.citations[messageId] || []); });
    }

    function closeSources() {
      q("sources").hidden = true;
      if (state.lastCite) { state.lastCite.focus(); }
    }
    q("sources-close").addEventListener("click", closeSources);
    q("sources").addEventListener("keydown", function (event) { if (event.key === "Escape") { closeSources(); } });

    function setBusy(busy) {
      state.busy = busy;
      send.disabled = busy;
      send.hidden = busy;  // the stop button takes its place
      stop.hidden = !busy;
      if (!busy && document.activeElement === stop) { question.focus(); }
    }

    // A question the server refused before storing it (quota, paused, consent): the typed text goes back.
    function refuse(shell, questionItem, text, error) {
      shell.item.remove();
      if (questionItem) { questionItem.remove(); }
      if (!question.value) { question.value = text; growInput(); }
      var box = q("refused");
      box.textContent = (error && error.message) || t.error_generic;
      box.hidden = false;
      setStatus("");
    }

    function ask(text, clientId, shellQuestion) {
      var questionItem = shellQuestion ? null : addQuestion(text);
      var shell = addAnswerShell();
      q("refused").hidden = true;
      setBusy(true);
      setStatus(t.thinking);
      var controller = new AbortController();
      state.controller = controller;
      var finished = false, started = false;
      return authFetch(api + "/chat", {
        method: "POST", signal: controller.signal,
        headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
        body: JSON.stringify({ question: text, client_id: clientId, conversation_id: state.conversationId })
      }).then(function (response) {
        if (!response.ok) {
          return jsonOrError(response).catch(function (error) {
            finished = true;
            if (response.status === 429 || response.status === 423 || response.status === 403 || response.status === 400) {
              refuse(shell, questionItem, text, error);
            } else {
              showError(shell, error.message || t.error_generic, text, clientId);
            }
          });
        }
        return readEvents(response, function (name, data) {
          if (data.conversation_id && data.conversation_id !== state.conversationId) {
            state.conversationId = data.conversation_id;
            loadConversations();
          }
          if (name === "token") {
            var follow = nearBottom();
            if (!started) { started = true; setStatus(t.writing); }
            shell.live.textContent += data.text;  // text only, never HTML; not a live region (announced once when done)
            if (follow) { toBottom(); }
          } else if (name === "status") {
            if (data.state === "queued") { setStatus(fmt(t.queued, { n: data.position })); }
            else if (data.state === "warming_up") { setStatus(t.warming_up); }
            else if (data.state === "preparing") { setStatus(t.preparing); }
            else if (data.state === "fallback") { setStatus(t.fallback); }
          } else if (name === "done") {
            finished = true;
            var follow2 = nearBottom();
            setStatus("");
            finishAnswer(shell, data);
            showQuota(data.quota);
            if (follow2) { toBottom(); }
          } else if (name === "error") {
            finished = true;
            showError(shell, data.code === "busy" ? fmt(t.queued, { n: data.position }) : (data.message || t.error_generic), text, clientId);
          }
        });
      }).catch(function (error) {
        if (error && error.name === "AbortError") {
          finished = true;
          showStopped(shell, text, clientId);
          return;
        }
        finished = true;
        showError(shell, (error && error.message) || t.network_error, text, clientId);
      }).then(function () {
        if (!finished && !controller.signal.aborted) { showError(shell, t.network_error, text, clientId); }
        setBusy(false);
        loadConversations();
      });
    }

    function retryButton(shell, text, clientId, label) {
      var retry = el("button", { type: "button", class: "cb-btn cb-small" }, label || t.retry);
      retry.addEventListener("click", function () {
        if (state.busy) { return; }
        shell.item.remove();
        ask(text, clientId, true);  // the same client id: the question is never stored twice
      });
      return retry;
    }

    function showStopped(shell, text, clientId) {
      shell.item.setAttribute("aria-busy", "false");
      shell.item.classList.add("cb-stopped");
      setStatus(t.stopped);
      var note = el("p", { class: "cb-note" }, t.stopped);
      shell.body.appendChild(note);
      shell.body.appendChild(retryButton(shell, text, clientId));
    }

    function showError(shell, message, text, clientId) {
      shell.item.setAttribute("aria-busy", "false");
      shell.item.classList.add("cb-failed");
      var note = el("p", { class: "cb-error", role: "alert" }, message);
      shell.body.appendChild(note);
      setStatus("");
      shell.body.appendChild(retryButton(shell, text, clientId));
      toBottom();
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = question.value.trim();
      if (!text || state.busy) { return; }
      question.value = "";
      growInput();
      ask(text, newId());
    });
    question.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
      }
    });
    stop.addEventListener("click", function () {
      if (state.controller) { state.controller.abort(); }
      question.focus();
    });

    function setConvsOpen(open) {
      q("convs").classList.toggle("cb-open", open);
      q("toggle-convs").setAttribute("aria-expanded", String(open));
      q("toggle-convs").textContent = open ? t.hide_conversations : t.show_conversations;
    }
    function narrow() { return window.getComputedStyle(q("toggle-convs")).display !== "none"; }

    function loadConversations() {
      return authFetch(api + "/conversations").then(jsonOrError).then(function (body) {
        var list = q("conv-list");
        list.textContent = "";
        q("no-convs").hidden = body.conversations.length > 0;
        q("delete-all").hidden = body.conversations.length === 0;
        body.conversations.forEach(function (c) {
          var item = el("li", {});
          var title = c.title || "…";
          var open = el("button", { type: "button", class: "cb-link cb-conv", title: title }, title);
          if (c.id === state.conversationId) {
            open.setAttribute("aria-current", "true");
            item.classList.add("cb-current-conv");
          }
          open.addEventListener("click", function () {
            openConversation(c.id);
            if (narrow()) { setConvsOpen(false); }
          });
          var remove = el("button", { type: "button", class: "cb-icon", "aria-label": t.delete_conversation + ": " + (c.title || "") }, "✕");
          remove.addEventListener("click", function () {
            if (!window.confirm(t.confirm_delete_one)) { return; }
            authFetch(api + "/conversations/" + c.id, { method: "DELETE" }).then(function () {
              if (state.conversationId === c.id) { startNew(); }
              loadConversations().then(function () { q("new").focus(); });
            });
          });
          item.appendChild(open);
          item.appendChild(remove);
          list.appendChild(item);
        });
      }, function () { /* the list is a convenience; the chat still works */ });
    }

    function openConversation(id) {
      return authFetch(api + "/conversations/" + id).then(jsonOrError).then(function (body) {
        state.conversationId = id;
        log.textContent = "";
        var questions = {};
        var answered = {};
        body.messages.forEach(function (m) { if (m.role !== "user" && m.reply_to) { answered[m.reply_to] = true; } });
        body.messages.forEach(function (m) {
          if (m.role === "user") {
            questions[m.id] = m;
            addQuestion(m.text);
            // Its answer never arrived (the page was closed while it was prepared): say so, offer it again.
            if (!answered[m.id]) { unanswered(addAnswerShell(), m, null); }
            return;
          }
          var shell = addAnswerShell();
          if (m.status === "ok") {
            finishAnswer(shell, { html: m.html, citations: m.citations, message_id: m.id }, true);
          } else {
            unanswered(shell, questions[m.reply_to], m);
          }
        });
        announce.textContent = "";
        loadConversations();
        toBottom();
        question.focus();
      });
    }

    function unanswered(shell, asked, answer) {
      shell.item.setAttribute("aria-busy", "false");
      shell.item.classList.add("cb-failed");
      if (answer && answer.html && answer.error_code !== "answer_withheld") {
        shell.body.innerHTML = answer.html;  // what was said before it stopped (sanitized by the server)
      } else { shell.live.remove(); }
      var cancelled = !answer || answer.error_code === "cancelled";
      shell.body.appendChild(el("p", { class: "cb-error" }, cancelled ? t.not_answered : t.error_generic));
      if (asked && asked.client_id) { shell.body.appendChild(retryButton(shell, asked.text, asked.client_id, t.ask_again)); }
    }

    function startNew() {
      state.conversationId = null;
      log.textContent = "";
      setStatus("");
      loadConversations();
      question.focus();
    }
    q("new").addEventListener("click", function () {
      startNew();
      if (narrow()) { setConvsOpen(false); }
    });
    q("delete-all").addEventListener("click", function () {
      if (!window.confirm(t.confirm_delete_all)) { return; }
      authFetch(api + "/conversations", { method: "DELETE" }).then(function () { startNew(); });
    });
    q("toggle-convs").addEventListener("click", function () {
      setConvsOpen(!q("convs").classList.contains("cb-open"));
    });

    function setAvailable(available, message, canReview) {
      form.hidden = !available;
      q("unavailable").hidden = available;
      q("unavailable-text").textContent = message || "";
      q("consent-review").hidden = !canReview;
    }

    function showConsent(info) {
      var box = q("consent"), text = q("consent-text");
      text.textContent = "";
      String(info.notice.text || "").split(/\n\s*\n/).forEach(function (para) { text.appendChild(el("p", {}, para)); });
      box.hidden = false;
      setAvailable(false, "", false);
      q("unavailable").hidden = true;
      q("consent-accept").focus();
      function answer(accepted) {
        authFetch("/api/v1/consent", {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ accepted: accepted, version: info.notice.version })
        }).then(jsonOrError).then(function () {
          box.hidden = true;
          if (accepted) { setAvailable(true); question.focus(); } else { setAvailable(false, t.consent_declined, true); q("consent-review").focus(); }
        }, function (e) { setStatus(e.message); });
      }
      q("consent-accept").onclick = function () { answer(true); };
      q("consent-decline").onclick = function () { answer(false); };
      q("consent-review").onclick = function () { showConsent(info); };
    }

    function start() {
      var info = authFetch(api + "/chat/info").then(jsonOrError).then(function (body) {
        q("welcome").innerHTML = body.welcome_html;  // sanitized by the server
        if (body.paused) { setAvailable(false, body.pause_message || t.paused, false); return false; }
        return true;
      }, function () { return true; });
      var ready = function () { root.dataset.ready = "1"; };
      info.then(function (open) {
        if (!open || options.preview) { ready(); return; }
        return authFetch("/api/v1/consent").then(function (response) {
          if (response.status === 404) { return null; }
          return jsonOrError(response);
        }).then(function (consent) {
          if (!consent || consent.accepted) { return; }
          if (consent.reason === "declined") {
            setAvailable(false, t.consent_declined, true);
            q("consent-review").onclick = function () { showConsent(consent); };
          } else { showConsent(consent); }
        }, function () { /* no consent service: nothing to ask */ });
      }).then(ready, ready);
      loadConversations();
    }

    start();
    return { ask: function (text) { return ask(text, newId()); }, reload: start, open: openConversation };
  }

  window.CourseBots = window.CourseBots || {};
  window.CourseBots.mountChat = mountChat;
  window.CourseBots.catalogue = catalogue;
  window.CourseBots.fmt = fmt;
  window.CourseBots.el = el;
})();

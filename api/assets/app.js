// Docket's own script: the theme switch, and live pages. A page that shows something the log
// can change names it with `data-live-refresh` (the URL of its fresh HTML) and, for one ticket,
// `data-live-ticket`; when the live stream says something changed there, the part is fetched
// again and swapped in by htmx. No inline script anywhere: the CSP forbids it.
(function () {
  "use strict";

  var root = document.documentElement;
  var saved = null;
  try { saved = window.localStorage.getItem("docket-theme"); } catch (e) { saved = null; }
  if (saved === "light" || saved === "dark") { root.setAttribute("data-theme", saved); }

  function currentTheme() {
    var chosen = root.getAttribute("data-theme");
    if (chosen) { return chosen; }
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function labelThemeButton(button) {
    var next = currentTheme() === "dark" ? "light" : "dark";
    button.textContent = "Theme";
    button.setAttribute("aria-label", "Theme: switch to " + next);
  }

  var refreshing = {};
  function refresh(part) {
    var url = part.getAttribute("data-live-refresh");
    if (!url || refreshing[url]) { return; }
    refreshing[url] = true;
    // Coalesce a burst of events into one fetch.
    window.setTimeout(function () {
      refreshing[url] = false;
      if (window.htmx) {
        window.htmx.ajax("GET", url, { target: part, swap: "outerHTML" });
      }
    }, 100);
  }

  // A part that names the kinds it shows (`data-live-kinds`) follows those alone; the others
  // follow ticket events.
  function refreshAll(ticket, kind) {
    document.querySelectorAll("[data-live-refresh]").forEach(function (part) {
      var kinds = part.getAttribute("data-live-kinds");
      if (kind && (kinds ? kinds.split(" ").indexOf(kind) < 0 : kind === "alert")) { return; }
      var only = part.getAttribute("data-live-ticket");
      if (!only || !ticket || only === ticket) { refresh(part); }
    });
  }

  // Events from the log change what parts show; typing and viewing are only told.
  var logKinds = ["ticket_created", "ticket_updated", "ticket_assigned", "ticket_status_changed",
                  "new_comment", "ticket_escalated", "sla_warning", "sla_breach", "alert"];
  var toldKinds = ["typing", "viewing", "notification"];

  // A notification for the visitor (the stream carries only their own): the bell counts up.
  document.addEventListener("docket:live", function (event) {
    if (event.detail.kind !== "notification") { return; }
    var count = document.getElementById("bell-count");
    if (!count) { return; }
    var unread = (parseInt(count.getAttribute("data-unread"), 10) || 0) + 1;
    count.setAttribute("data-unread", String(unread));
    count.firstChild.nodeValue = String(unread);
    count.hidden = false;
    var title = event.detail.data && event.detail.data.data ? event.detail.data.data.title : "";
    if (title) { count.parentNode.setAttribute("title", "Latest: " + title); }
  });

  function connect(address, reconnected) {
    var source = new EventSource(address);
    logKinds.concat(toldKinds).forEach(function (kind) {
      source.addEventListener(kind, function (event) {
        var data = {};
        try { data = JSON.parse(event.data); } catch (e) { data = {}; }
        if (logKinds.indexOf(kind) >= 0) { refreshAll(kind === "alert" ? null : data.ticket_id, kind); }
        document.dispatchEvent(new CustomEvent("docket:live", { detail: { kind: kind, data: data } }));
      });
    });
    source.addEventListener("open", function () {
      root.setAttribute("data-live", "open");
      // Whatever happened while the stream was away is read afresh once.
      if (reconnected) { refreshAll(null); reconnected = false; }
    });
    source.addEventListener("error", function () {
      root.setAttribute("data-live", "retrying");
      if (source.readyState !== EventSource.CLOSED) { return; }
      // Refused (its token ran out): ask for a fresh address, then listen again.
      window.setTimeout(function () {
        window.fetch("/live/stream", { credentials: "same-origin" })
          .then(function (answer) { return answer.ok ? answer.text() : null; })
          .then(function (fresh) { if (fresh) { connect(fresh, true); } })
          .catch(function () { root.setAttribute("data-live", "closed"); });
      }, 1000);
    });
  }

  function listen() {
    var meta = document.querySelector('meta[name="docket-stream"]');
    if (!meta || !window.EventSource) { return; }
    connect(meta.getAttribute("content"), false);
  }

  // Who else has this ticket open, and who is typing on it: staff pages say every few seconds
  // that they are here, and every page says when its viewer types. Nothing of it is stored.
  function presence() {
    var line = document.getElementById("presence");
    if (!line) { return; }
    var base = line.getAttribute("data-presence");
    var ticket = line.getAttribute("data-ticket");
    var me = line.getAttribute("data-me");
    var csrf = line.getAttribute("data-csrf");
    var staff = line.getAttribute("data-staff") === "true";
    var others = {};
    var HERE_EVERY = 10000, GONE_AFTER = 25000, TYPING_FOR = 5000;

    function send(path, fields) {
      var body = new URLSearchParams(fields);
      body.set("csrf", csrf);
      return window.fetch(base + path, { method: "POST", body: body, credentials: "same-origin", keepalive: true })
        .catch(function () { /* told again shortly */ });
    }
    function render() {
      var now = Date.now();
      var parts = [];
      Object.keys(others).forEach(function (id) {
        var other = others[id];
        var typing = other.typingUntil > now;
        if (!typing && (!other.here || now - other.seen > GONE_AFTER)) { return; }
        parts.push(other.name + (typing ? " is typing…" : " is viewing"));
      });
      var text = parts.join(" · ");
      if (line.textContent !== text) { line.textContent = text; }
    }
    function sayHere() { if (staff) { send("/here", { status: "here" }); } }

    document.addEventListener("docket:live", function (event) {
      var data = event.detail.data || {};
      if (data.ticket_id !== ticket || !data.user_id || data.user_id === me) { return; }
      var other = others[data.user_id];
      var fresh = !other;
      if (!other) { other = others[data.user_id] = { name: data.name || "Someone", seen: 0, here: false, typingUntil: 0 }; }
      if (data.name) { other.name = data.name; }
      if (event.detail.kind === "viewing") {
        other.here = data.status !== "left";
        other.seen = Date.now();
        // A newcomer learns at once who is already here.
        if (fresh && other.here) { sayHere(); }
      } else if (event.detail.kind === "typing") {
        other.typingUntil = Date.now() + TYPING_FOR;
      }
      render();
    });

    sayHere();
    window.setInterval(sayHere, HERE_EVERY);
    window.setInterval(render, 1000);
    window.addEventListener("pagehide", function () { if (staff) { send("/here", { status: "left" }); } });

    var box = document.getElementById("body");
    var lastTyped = 0;
    if (box) {
      box.addEventListener("input", function () {
        var now = Date.now();
        if (now - lastTyped < 2000) { return; }
        lastTyped = now;
        var internal = document.querySelector('input[name=visibility][value=internal]');
        send("/typing", { internal: internal && internal.checked ? "true" : "false" });
      });
    }
  }

  // SLA countdowns: wall-clock time until each deadline, ticking every second.
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-countdown"));
      if (isNaN(due)) { return; }
      var left = Math.round((due - now) / 1000);
      var late = left < 0;
      var s = Math.abs(left);
      var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
      var text = (h ? h + " h " : "") + (h || m ? m + " min " : "") + sec + " s";
      el.textContent = late ? "(" + text + " late)" : "(in " + text + ")";
    });
  }

  // A button with `data-copy="<input id>"` copies that input's value (a key shown once).
  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var field = document.getElementById(button.getAttribute("data-copy"));
        if (!field) { return; }
        field.select();
        var done = function () { button.textContent = "Copied"; };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(field.value).then(done, function () { /* selected: copy by hand */ });
        }
      });
    });
  }

  // A choice marked `data-refresh` (a condition's field, an action's type) changes what else the
  // form offers: the form is posted as it stands with `action=refresh`, and its part marked
  // `data-refresh-part` is swapped for the one in the answer, the focus kept on that choice.
  // Without script, a "Update the choices" button does the same with a whole page.
  function refreshingChoices() {
    document.addEventListener("change", function (event) {
      var choice = event.target && event.target.closest ? event.target.closest("[data-refresh]") : null;
      if (!choice || !choice.form) { return; }
      var form = choice.form;
      var part = form.querySelector("[data-refresh-part]");
      if (!part || !window.fetch) { return; }
      var data = new URLSearchParams(new FormData(form));
      data.set("action", "refresh");
      var name = choice.getAttribute("name");
      part.setAttribute("aria-busy", "true");
      window.fetch(form.getAttribute("action"), { method: "POST", body: data, credentials: "same-origin" })
        .then(function (answer) { return answer.text(); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-refresh-part]");
          if (!fresh) { part.removeAttribute("aria-busy"); return; }
          // What was typed or chosen while the answer was on its way is kept: a single-valued
          // input whose value is no longer what was sent takes its value along.
          part.querySelectorAll("input[type=text][name], textarea[name], select[name]:not([multiple])").forEach(function (now) {
            var key = now.getAttribute("name");
            if (key === name || now.value === data.get(key)) { return; }
            var twin = fresh.querySelector('[name="' + key.replace(/"/g, "") + '"]');
            if (twin && (twin.tagName !== "SELECT" || twin.querySelector('option[value="' + now.value.replace(/"/g, "") + '"]'))) {
              twin.value = now.value;
            }
          });
          // Focus stays where the person is: on the twin of what had it in the old part (the
          // choice just made, or a box being typed into meanwhile, caret and all), and nowhere
          // new when it was outside the part. Focusing the choice always took the keys of
          // someone already typing in the next box.
          var active = document.activeElement;
          var held = active && part.contains(active) ? active.getAttribute("name") : null;
          var caret = held && typeof active.selectionStart === "number" ? [active.selectionStart, active.selectionEnd] : null;
          part.replaceWith(fresh);
          var again = null;
          fresh.querySelectorAll("[name]").forEach(function (el) { if (!again && held && el.getAttribute("name") === held) { again = el; } });
          if (again) {
            again.focus();
            if (caret && again.setSelectionRange) { try { again.setSelectionRange(caret[0], caret[1]); } catch (e) { /* not a text box */ } }
          }
        }, function () { part.removeAttribute("aria-busy"); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    window.setInterval(tick, 1000);
    var button = document.getElementById("theme-toggle");
    if (button) {
      labelThemeButton(button);
      button.addEventListener("click", function () {
        var next = currentTheme() === "dark" ? "light" : "dark";
        root.setAttribute("data-theme", next);
        try { window.localStorage.setItem("docket-theme", next); } catch (e) { /* private mode */ }
        labelThemeButton(button);
      });
    }
    listen();
    presence();
    copyButtons();
    refreshingChoices();
  });
})();

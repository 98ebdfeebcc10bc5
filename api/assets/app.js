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

  function listen() {
    var meta = document.querySelector('meta[name="docket-stream"]');
    if (!meta || !window.EventSource) { return; }
    var source = new EventSource(meta.getAttribute("content"));
    var kinds = ["ticket_created", "ticket_updated", "ticket_assigned", "ticket_status_changed",
                 "new_comment", "ticket_escalated", "sla_warning", "sla_breach"];
    kinds.forEach(function (kind) {
      source.addEventListener(kind, function (event) {
        var data = {};
        try { data = JSON.parse(event.data); } catch (e) { data = {}; }
        document.querySelectorAll("[data-live-refresh]").forEach(function (part) {
          var ticket = part.getAttribute("data-live-ticket");
          if (!ticket || ticket === data.ticket_id) { refresh(part); }
        });
        document.dispatchEvent(new CustomEvent("docket:live", { detail: { kind: kind, data: data } }));
      });
    });
    source.addEventListener("open", function () { root.setAttribute("data-live", "open"); });
    source.addEventListener("error", function () { root.setAttribute("data-live", "retrying"); });
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
  });
})();

// Live admin pages (docs/operations.md). The instance page follows its key's committed state over Server-Sent
// Events (the ingress's watch) and, when the version differs from the page's, reads the page again and swaps its
// panels; the overview reads its counts again every few seconds while its tab is visible. Without this script
// (or without EventSource) both pages stay as they were loaded.
(function () {
  "use strict";

  if (!window.fetch || !window.DOMParser) return;

  // The panels of the instance page a live update swaps: the key's fields (version, changed), state, inbox,
  // timers, recent invocations and history (whose restore forms carry the version they expect).
  var PANELS = ["#instance_form fieldset", "#state-entries", "#inbox", "#timers", "#recent-invocations", "#state-history"];
  var FOCUSABLE = "a[href], button, input, select, textarea";

  function clock(date) {
    return date.toISOString().slice(11, 19) + " UTC";
  }

  // The page at `url` as a document; null when it is not the page (signed out: the sign-in page, an error).
  function fetchPage(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      return html ? new DOMParser().parseFromString(html, "text/html") : null;
    });
  }

  // True when an operator is typing or has changed a field inside `element`: it is never swapped.
  function edited(element) {
    return Array.prototype.some.call(element.querySelectorAll("input, select, textarea"), function (field) {
      var type = (field.getAttribute("type") || "").toLowerCase();
      if (["hidden", "submit", "button", "reset", "image"].indexOf(type) >= 0) return false;
      if (field === document.activeElement) return true;
      if (type === "checkbox" || type === "radio") return field.checked !== field.defaultChecked;
      if (field.tagName === "SELECT") {
        return Array.prototype.some.call(field.options, function (option) { return option.selected !== option.defaultSelected; });
      }
      return field.value !== field.defaultValue;
    });
  }

  // Replace `element`'s content with `fresh`'s; focus inside it stays on the control at the same place.
  function swap(element, fresh) {
    var active = document.activeElement, index = -1;
    if (active && active !== document.body && element.contains(active)) {
      index = Array.prototype.indexOf.call(element.querySelectorAll(FOCUSABLE), active);
    }
    element.innerHTML = fresh.innerHTML;
    if (index >= 0) {
      var again = element.querySelectorAll(FOCUSABLE)[index];
      if (again) again.focus();
    }
  }

  function followInstance(live) {
    var url = live.getAttribute("data-watch");
    if (!url || !window.EventSource) return;
    var latest = null, busy = false;

    function refresh() {
      if (busy || latest === null || String(latest) === live.getAttribute("data-version")) return;
      busy = true;
      var asked = latest;
      fetchPage(window.location.href).then(function (page) {
        var fresh = page && page.getElementById("vo-live");
        if (!fresh) return;
        var kept = 0;
        PANELS.forEach(function (selector) {
          var mine = document.querySelectorAll(selector), theirs = page.querySelectorAll(selector);
          if (mine.length !== theirs.length) return;
          Array.prototype.forEach.call(mine, function (element, index) {
            if (edited(element)) kept += 1;
            else swap(element, theirs[index]);
          });
        });
        live.setAttribute("data-version", fresh.getAttribute("data-version"));
        live.textContent = "Updated live at " + clock(new Date()) + " (version " + fresh.getAttribute("data-version") + ")" +
          (kept ? "; a panel being edited was left as it was." : ".");
        live.hidden = false;
      }).catch(function () {}).finally(function () {
        busy = false;
        if (latest !== asked) refresh();  // a newer change arrived meanwhile
      });
    }

    var source = new EventSource(url, { withCredentials: true });
    source.onmessage = function (event) {
      try {
        latest = JSON.parse(event.data).version;
      } catch (error) {
        return;
      }
      refresh();
    };
    source.onopen = function () {
      if (live.hidden) {
        live.textContent = "Following this key live.";
        live.hidden = false;
      }
    };
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function refreshOverview(table) {
    var seconds = parseFloat(table.getAttribute("data-refresh")) || 5;
    var timer = null, busy = false;
    var note = document.getElementById("vo-overview-live");
    if (note) note.hidden = false;

    function schedule() {
      if (timer === null && !busy && !document.hidden) timer = setTimeout(tick, seconds * 1000);
    }

    function tick() {
      timer = null;
      if (busy || document.hidden) return;  // resumed when the tab is shown again
      busy = true;
      fetchPage(window.location.href).then(function (page) {
        var body = page && page.querySelector("#overview tbody");
        if (!body) return;
        swap(table.querySelector("tbody"), body);
        var time = document.querySelector(".vo-as-of time"), fresh = page.querySelector(".vo-as-of time");
        if (time && fresh) {
          time.setAttribute("datetime", fresh.getAttribute("datetime"));
          time.textContent = fresh.textContent;
        }
      }).catch(function () {}).finally(function () {
        busy = false;
        schedule();
      });
    }

    document.addEventListener("visibilitychange", function () {
      if (document.hidden) {
        clearTimeout(timer);
        timer = null;
      } else if (timer === null && !busy) {
        tick();  // shown again: the counts now, then every few seconds
      }
    });
    schedule();
  }

  function start() {
    var live = document.getElementById("vo-live");
    if (live) followInstance(live);
    var overview = document.querySelector("table#overview[data-refresh]");
    if (overview) refreshOverview(overview);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

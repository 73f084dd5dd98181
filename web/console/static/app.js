// vigil console: small enhancements of pages that work without them.
// Loaded in <head>, so that the chosen theme applies before the page is
// drawn; the rest waits for the document.
(function () {
  "use strict";
  var root = document.documentElement;
  var stored = null;
  try { stored = localStorage.getItem("vigil-theme"); } catch (e) { /* storage off */ }
  if (stored === "light" || stored === "dark") {
    root.setAttribute("data-theme", stored);
  }

  function currentTheme() {
    var t = root.getAttribute("data-theme");
    if (t) { return t; }
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function setupTheme() {
    var button = document.querySelector("[data-theme-toggle]");
    if (!button) { return; }
    var label = function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      button.textContent = next === "dark" ? "Dark theme" : "Light theme";
      button.setAttribute("aria-label", "Switch to the " + next + " theme");
    };
    button.hidden = false;
    label();
    button.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { localStorage.setItem("vigil-theme", next); } catch (e) { /* storage off */ }
      label();
    });
  }

  // Times are written in UTC; hovering one shows it in local time.
  function setupTimes() {
    var times = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var d = new Date(times[i].getAttribute("datetime"));
      if (!isNaN(d.getTime())) {
        times[i].title = "Local time: " + d.toLocaleString();
      }
    }
  }

  function typing(el) {
    if (!el) { return false; }
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }

  // Keyboard: "/" focuses the search box, j and k move through the rows
  // of a list, Enter opens the row (its link has the focus).
  function setupKeys() {
    var current = -1;
    function links() {
      return document.querySelectorAll("[data-rows] [data-row-link]");
    }
    function move(by) {
      var ls = links();
      if (ls.length === 0) { return; }
      if (current >= 0 && current < ls.length) {
        var old = ls[current].closest("tr");
        if (old) { old.classList.remove("current"); }
      }
      current = Math.max(0, Math.min(ls.length - 1, current + by));
      var row = ls[current].closest("tr");
      if (row) { row.classList.add("current"); }
      ls[current].focus();
      if (ls[current].scrollIntoView) { ls[current].scrollIntoView({ block: "nearest" }); }
    }
    document.addEventListener("keydown", function (ev) {
      if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) { return; }
      if (ev.key === "/") {
        var box = document.querySelector("[data-search-box]");
        ev.preventDefault();
        if (box) {
          box.focus();
          box.select();
        } else {
          window.location.href = "/";
        }
      } else if (ev.key === "j") {
        ev.preventDefault();
        move(1);
      } else if (ev.key === "k") {
        ev.preventDefault();
        move(current < 0 ? 1 : -1);
      }
    });
  }

  function ready() {
    setupTheme();
    setupTimes();
    setupKeys();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();

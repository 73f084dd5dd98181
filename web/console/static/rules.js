// vigil console: the rule editor checks the rule file as it is typed,
// through POST /api/v1/rules/lint, and keeps "Save" to the file as it
// was backtested. The page works without it: a backtest lints too.
(function () {
  "use strict";

  function setup() {
    var form = document.querySelector("[data-rule-editor]");
    if (!form) { return; }
    var text = form.querySelector("textarea[name=content]");
    var status = document.getElementById("lint-status");
    var list = document.getElementById("lint-problems");
    var csrf = form.getAttribute("data-csrf");
    var file = form.getAttribute("data-file") || "";
    var timer = null;
    var asked = 0;

    function show(res) {
      var errors = 0;
      list.textContent = "";
      res.problems.forEach(function (p) {
        if (p.severity === "error") { errors++; }
        var li = document.createElement("li");
        li.className = "problem-" + p.severity;
        if (p.line) {
          li.setAttribute("data-line", String(p.line));
          var line = document.createElement("span");
          line.className = "line";
          line.textContent = "line " + p.line;
          li.appendChild(line);
          li.appendChild(document.createTextNode(" "));
        }
        var sev = document.createElement("span");
        sev.className = "severity";
        sev.textContent = p.severity;
        li.appendChild(sev);
        if (p.rule) {
          li.appendChild(document.createTextNode(" "));
          var code = document.createElement("code");
          code.textContent = p.rule;
          li.appendChild(code);
        }
        li.appendChild(document.createTextNode(": " + p.message));
        list.appendChild(li);
      });
      var n = res.problems.length;
      if (res.ok) {
        status.className = "lint-ok";
        status.textContent = n === 0 ? "No problems found." : "No errors; " + n + " warning" + (n === 1 ? "" : "s") + ".";
      } else {
        status.className = "lint-bad";
        status.textContent = n + " problem" + (n === 1 ? "" : "s") + ": fix the errors to backtest and save.";
      }
      text.setAttribute("aria-invalid", errors > 0 ? "true" : "false");
    }

    function lint() {
      var mine = ++asked;
      fetch("/api/v1/rules/lint?file=" + encodeURIComponent(file), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ content: text.value })
      }).then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      }).then(function (res) {
        // An answer to an older text is of no use.
        if (mine === asked) { show(res); }
      }).catch(function () {
        if (mine === asked) {
          status.className = "lint-bad";
          status.textContent = "The rule could not be checked; backtest it to see its problems.";
        }
      });
    }

    // Saving saves what was backtested: once the text differs from it,
    // the rule must be backtested again.
    var save = document.getElementById("save");
    var tested = save ? save.form.querySelector("textarea[name=content]").value : null;
    var hint = save ? save.form.querySelector(".hint") : null;
    var hintText = hint ? hint.textContent : "";

    text.addEventListener("input", function () {
      if (timer) { clearTimeout(timer); }
      timer = setTimeout(lint, 300);
      if (save) {
        var same = text.value.replace(/\r\n/g, "\n") === tested;
        save.disabled = !same;
        if (hint) { hint.textContent = same ? hintText : "Changed since the backtest: backtest again to save."; }
      }
    });

    // A problem's line: clicking it puts the cursor there.
    list.addEventListener("click", function (ev) {
      var li = ev.target.closest("li[data-line]");
      if (!li) { return; }
      var want = parseInt(li.getAttribute("data-line"), 10);
      var lines = text.value.split("\n");
      var at = 0;
      for (var i = 0; i < want - 1 && i < lines.length; i++) { at += lines[i].length + 1; }
      text.focus();
      text.setSelectionRange(at, at + (lines[want - 1] || "").length);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();

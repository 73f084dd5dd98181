// chart.js: brushing on the histograms that package web/chart draws.
//
// Drag across an svg.chart-histogram to select a time range; on release
// the page loads again with its from= and to= query parameters set to the
// range (its other parameters kept), and the server draws it anew. The
// range runs from the first to the last bar under the selection, by their
// data-from and data-to; a selection over no bar is turned into times by
// the chart's own data-from, data-to, data-x0 and data-x1 (the plot's
// edges). A press without a drag is a click: a bar's link is followed.
// Escape cancels a selection.
//
// Pages work without this script. It runs under a Content-Security-Policy
// of script-src 'self' and style-src 'self': no eval, no inline style (the
// selection is a <rect class="chart-brush"> that the stylesheet colors).
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const minDrag = 4; // screen pixels a press must move to be a drag

  // viewX returns the x of a pointer event in the svg's viewBox units.
  function viewX(svg, ev) {
    const m = svg.getScreenCTM();
    if (!m) return NaN;
    return new DOMPoint(ev.clientX, ev.clientY).matrixTransform(m.inverse()).x;
  }

  // rangeOf returns the [from, to] (RFC 3339 strings) under the
  // selection a..b of the viewBox, or null if it has none.
  function rangeOf(svg, a, b) {
    let from = null, to = null;
    for (const bar of svg.querySelectorAll("rect.chart-bar[data-from][data-to]")) {
      const x = parseFloat(bar.getAttribute("x"));
      const w = parseFloat(bar.getAttribute("width"));
      if (!(x < b && x + w > a)) continue;
      const f = bar.dataset.from, t = bar.dataset.to;
      if (from === null || Date.parse(f) < Date.parse(from)) from = f;
      if (to === null || Date.parse(t) > Date.parse(to)) to = t;
    }
    if (from !== null && Date.parse(to) > Date.parse(from)) return [from, to];
    // No bar: interpolate between the plot's edges.
    const x0 = parseFloat(svg.dataset.x0), x1 = parseFloat(svg.dataset.x1);
    const t0 = Date.parse(svg.dataset.from), t1 = Date.parse(svg.dataset.to);
    if (!(x1 > x0) || !(t1 > t0)) return null;
    const at = (x) => new Date(Math.round(t0 + ((x - x0) / (x1 - x0)) * (t1 - t0)));
    const f = at(a), t = at(b);
    return t > f ? [f.toISOString(), t.toISOString()] : null;
  }

  // go loads the page again for the range.
  function go([from, to]) {
    const u = new URL(window.location.href);
    u.searchParams.set("from", from);
    u.searchParams.set("to", to);
    window.location.assign(u.href);
  }

  function attach(svg) {
    const x0 = parseFloat(svg.dataset.x0), x1 = parseFloat(svg.dataset.x1);
    if (!(x1 > x0)) return; // not a histogram with a plot (no events)
    const clamp = (x) => Math.min(Math.max(x, x0), x1);
    let start = null; // the selection's anchor in viewBox units, while pressed
    let startScreen = 0; // and on screen
    let dragged = false; // whether this press became a drag
    let brush = null; // the selection's rect

    function reset() {
      start = null;
      if (brush) brush.remove();
      brush = null;
    }

    svg.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0 || ev.pointerType === "touch") return; // touch scrolls
      const x = viewX(svg, ev);
      if (Number.isNaN(x)) return;
      start = clamp(x);
      startScreen = ev.clientX;
      dragged = false;
    });
    // Neither a native drag of a bar's link nor a text selection.
    svg.addEventListener("mousedown", (ev) => { if (ev.button === 0) ev.preventDefault(); });
    svg.addEventListener("dragstart", (ev) => ev.preventDefault());

    svg.addEventListener("pointermove", (ev) => {
      if (start === null) return;
      if (!dragged) {
        if (Math.abs(ev.clientX - startScreen) < minDrag) return;
        // Captured only now: a capture would take a click from the link.
        dragged = true;
        svg.setPointerCapture(ev.pointerId);
        brush = document.createElementNS(SVG, "rect");
        brush.setAttribute("class", "chart-brush");
        brush.setAttribute("fill", "currentColor");
        brush.setAttribute("fill-opacity", "0.2");
        brush.setAttribute("pointer-events", "none");
        const box = svg.viewBox.baseVal;
        brush.setAttribute("y", box.y);
        brush.setAttribute("height", box.height);
        svg.appendChild(brush);
      }
      const x = clamp(viewX(svg, ev));
      brush.setAttribute("x", Math.min(start, x));
      brush.setAttribute("width", Math.abs(x - start));
    });

    svg.addEventListener("pointerup", (ev) => {
      if (start === null) return;
      const a = start, b = clamp(viewX(svg, ev));
      if (!dragged) { start = null; return; } // a click, for the link
      const range = Number.isNaN(b) ? null : rangeOf(svg, Math.min(a, b), Math.max(a, b));
      if (range) go(range);
      else reset();
      start = null;
    });
    svg.addEventListener("pointercancel", reset);

    // The click that ends a drag is not a click on a bar's link.
    svg.addEventListener("click", (ev) => {
      if (dragged) {
        ev.preventDefault();
        dragged = false;
      }
    }, true);

    document.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && start !== null) {
        reset();
        dragged = true; // the release that follows selects nothing
      }
    });
  }

  function init() {
    document.querySelectorAll("svg.chart-histogram").forEach(attach);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();

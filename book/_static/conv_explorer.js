/* Convolution explorer: windows of a K x K kernel sliding with stride S over an
 * H x H input padded by P on every side. Runs in the reader's browser, no kernel.
 *
 * Markup: <div class="conv-explorer" data-input="5" data-kernel="3" data-stride="2" data-padding="1"></div>
 * The output size follows the rule of torch and coursekit.arith.conv_output_size(strict=False):
 *     O = floor((H + 2P - K) / S) + 1;
 * when S does not divide H + 2P - K, the last (H + 2P - K) mod S rows and columns
 * of the padded input are never visited by any window. */
(function () {
  "use strict";

  var LIMITS = { input: [1, 16], kernel: [1, 9], stride: [1, 5], padding: [0, 4] };
  var LABELS = { input: "input H", kernel: "kernel K", stride: "stride S", padding: "padding P" };
  var CELL = 22;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svgEl(tag, attrs) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  /* The sizes of one configuration; error is a sentence when no window fits. */
  function geometry(h, k, s, p) {
    var span = h + 2 * p - k;
    if (span < 0) {
      return { error: "A " + k + "\u00d7" + k + " kernel does not fit in the " + (h + 2 * p) + "\u00d7" + (h + 2 * p) + " padded input." };
    }
    var out = Math.floor(span / s) + 1;
    return { padded: h + 2 * p, out: out, unvisited: span % s, covered: (out - 1) * s + k };
  }

  function drawGrid(svg, g, k, s, p, step) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var n = g.padded;
    svg.setAttribute("viewBox", "0 0 " + (n * CELL + 2) + " " + (n * CELL + 2));
    svg.setAttribute("width", Math.min(n * CELL + 2, 360));
    for (var r = 0; r < n; r++) {
      for (var c = 0; c < n; c++) {
        var pad = r < p || c < p || r >= n - p || c >= n - p;
        var never = r >= g.covered || c >= g.covered;
        var cls = never ? "ce-cell ce-never" : pad ? "ce-cell ce-pad" : "ce-cell";
        svg.appendChild(svgEl("rect", { x: 1 + c * CELL, y: 1 + r * CELL, width: CELL, height: CELL, "class": cls }));
      }
    }
    var row = Math.floor(step / g.out), col = step % g.out;
    svg.appendChild(svgEl("rect", {
      x: 1 + col * s * CELL, y: 1 + row * s * CELL, width: k * CELL, height: k * CELL, "class": "ce-window"
    }));
  }

  /* The output map, with the cell that the current window writes. */
  function drawOutput(svg, g, step) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var n = g.out;
    svg.setAttribute("viewBox", "0 0 " + (n * CELL + 2) + " " + (n * CELL + 2));
    svg.setAttribute("width", Math.min(n * CELL + 2, 360));
    for (var i = 0; i < n * n; i++) {
      svg.appendChild(svgEl("rect", {
        x: 1 + (i % n) * CELL, y: 1 + Math.floor(i / n) * CELL, width: CELL, height: CELL,
        "class": i === step ? "ce-cell ce-current" : "ce-cell"
      }));
    }
  }

  function build(root) {
    var state = {}, inputs = {};
    var controls = el("div", { "class": "ce-controls" });
    Object.keys(LIMITS).forEach(function (name) {
      var value = parseInt(root.dataset[name], 10);
      state[name] = isNaN(value) ? LIMITS[name][0] : value;
      var label = el("label", {}, LABELS[name] + " ");
      var input = el("input", { type: "number", min: LIMITS[name][0], max: LIMITS[name][1], value: state[name], "data-param": name });
      label.appendChild(input);
      controls.appendChild(label);
      inputs[name] = input;
    });
    var next = el("button", { type: "button", "class": "ce-next" }, "next window");
    controls.appendChild(next);
    var svg = svgEl("svg", { "class": "ce-grid", role: "img", "aria-label": "padded input" });
    var output = svgEl("svg", { "class": "ce-grid ce-output", role: "img", "aria-label": "output" });
    var summary = el("p", { "class": "ce-summary", "aria-live": "polite" });
    var figure = el("div", { "class": "ce-figure" });
    figure.appendChild(svg);
    figure.appendChild(document.createTextNode(" \u2192 "));
    figure.appendChild(output);
    root.appendChild(controls);
    root.appendChild(figure);
    root.appendChild(summary);
    var step = 0;

    function render() {
      Object.keys(inputs).forEach(function (name) {
        var v = parseInt(inputs[name].value, 10);
        var lo = LIMITS[name][0], hi = LIMITS[name][1];
        state[name] = isNaN(v) ? lo : Math.max(lo, Math.min(hi, v));
      });
      var h = state.input, k = state.kernel, s = state.stride, p = state.padding;
      var g = geometry(h, k, s, p);
      root.dataset.outputSize = g.error ? "" : g.out;
      root.dataset.unvisited = g.error ? "" : g.unvisited;
      figure.style.display = g.error ? "none" : "";
      if (g.error) {
        summary.textContent = g.error;
        return;
      }
      step = step % (g.out * g.out);
      drawGrid(svg, g, k, s, p, step);
      drawOutput(output, g, step);
      var text = "Output " + g.out + "\u00d7" + g.out + " = floor((" + h + " + 2\u00b7" + p + " \u2212 " + k + ") / " + s + ") + 1. " +
        "Window " + (step + 1) + " of " + g.out * g.out + ". ";
      text += g.unvisited
        ? "The stride does not tile the padded input: the last " + g.unvisited + " row(s) and column(s) (red) are never visited."
        : "The windows tile the padded input exactly.";
      summary.textContent = text;
    }

    Object.keys(inputs).forEach(function (name) {
      inputs[name].addEventListener("input", function () { step = 0; render(); });
    });
    next.addEventListener("click", function () { step += 1; render(); });
    render();
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("div.conv-explorer"), build);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

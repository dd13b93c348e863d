/* Receptive-field builder: a stack of conv and pooling windows, typed by the
 * reader, with the receptive field after every layer and the input region that
 * the centre output unit sees. Runs in the reader's browser, no kernel.
 *
 * Markup: <div class="rf-builder" data-layers="conv5, pool2, conv5, pool2" data-input="32"></div>
 * Layer syntax: conv<K> or pool<K>, optionally followed by s<S> (stride) and p<P>
 * (padding); a conv's stride defaults to 1, a pool's to its size.
 * The numbers follow coursekit.arith: each layer adds (K - 1) * jump to the field,
 * jump being the product of the strides below it (receptive_field), and the
 * output size is floor((H + 2P - K) / S) + 1 (conv_output_size(strict=False)). */
(function () {
  "use strict";

  var PRESETS = {
    "LeNet-5": "conv5, pool2, conv5, pool2",
    "three 3x3 convs": "conv3 p1, conv3 p1, conv3 p1",
    "AlexNet features": "conv11 s4, pool3 s2, conv5 p2, pool3 s2, conv3 p1, conv3 p1, conv3 p1, pool3 s2"
  };
  var LAYER = /^(conv|pool)\s*(\d+)((?:\s+[sp]\d+)*)$/;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* "conv3 s2 p1" -> {kind, kernel, stride, padding}; throws a sentence naming the bad part. */
  function parseLayer(text) {
    var m = LAYER.exec(text.trim().toLowerCase());
    if (!m || +m[2] < 1) throw new Error("cannot read layer \u201c" + text.trim() + "\u201d: write e.g. conv5, conv3 s2 p1 or pool2");
    var layer = { kind: m[1], kernel: +m[2], stride: m[1] === "pool" ? +m[2] : 1, padding: 0 };
    m[3].trim().split(/\s+/).filter(Boolean).forEach(function (opt) {
      if (opt[0] === "s") layer.stride = +opt.slice(1);
      else layer.padding = +opt.slice(1);
    });
    if (layer.stride < 1) throw new Error("stride must be at least 1 in \u201c" + text.trim() + "\u201d");
    return layer;
  }

  /* Walk the stack: per layer its output size, jump and receptive field. */
  function walk(layers, size) {
    var field = 1, jump = 1, offset = 0, rows = [];
    layers.forEach(function (layer, i) {
      var span = size + 2 * layer.padding - layer.kernel;
      if (span < 0) throw new Error("layer " + (i + 1) + ": a window of " + layer.kernel + " does not fit in an input of " + size);
      offset += layer.padding * jump;
      field += (layer.kernel - 1) * jump;
      jump *= layer.stride;
      size = Math.floor(span / layer.stride) + 1;
      rows.push({ layer: layer, size: size, jump: jump, field: field });
    });
    return { rows: rows, field: field, jump: jump, offset: offset, size: size };
  }

  function drawInput(canvas, n, start, field) {
    var scale = Math.max(1, Math.floor(240 / n)), side = n * scale;
    canvas.width = side;
    canvas.height = side;
    var ctx = canvas.getContext("2d");
    ctx.fillStyle = "#eee";
    ctx.fillRect(0, 0, side, side);
    ctx.strokeStyle = "#bbb";
    ctx.strokeRect(0.5, 0.5, side - 1, side - 1);
    var a = Math.max(0, start), b = Math.min(n, start + field);
    ctx.fillStyle = "rgba(214, 39, 40, 0.45)";
    ctx.fillRect(a * scale, a * scale, (b - a) * scale, (b - a) * scale);
  }

  function table(result, input) {
    var t = el("table", { "class": "rf-table" }), head = el("tr");
    ["layer", "kernel", "stride", "padding", "output size", "jump", "receptive field"].forEach(function (h) { head.appendChild(el("th", {}, h)); });
    t.appendChild(head);
    var first = el("tr");
    ["input", "", "", "", input + "\u00d7" + input, "1", "1"].forEach(function (v) { first.appendChild(el("td", {}, v)); });
    t.appendChild(first);
    result.rows.forEach(function (row, i) {
      var tr = el("tr"), l = row.layer;
      [(i + 1) + ". " + l.kind, l.kernel, l.stride, l.padding, row.size + "\u00d7" + row.size, row.jump, row.field].forEach(function (v) {
        tr.appendChild(el("td", {}, String(v)));
      });
      t.appendChild(tr);
    });
    return t;
  }

  function build(root) {
    var spec = el("input", { type: "text", "class": "rf-spec", value: root.dataset.layers || PRESETS["LeNet-5"], size: 48, "aria-label": "layers" });
    var input = el("input", { type: "number", "class": "rf-input", min: 1, max: 512, value: root.dataset.input || 32, "aria-label": "input size" });
    var controls = el("div", { "class": "rf-controls" }), presets = el("div", { "class": "rf-presets" });
    var label = el("label", {}, "layers ");
    label.appendChild(spec);
    controls.appendChild(label);
    label = el("label", {}, " input size ");
    label.appendChild(input);
    controls.appendChild(label);
    Object.keys(PRESETS).forEach(function (name) {
      var button = el("button", { type: "button", "data-preset": name }, name);
      button.addEventListener("click", function () { spec.value = PRESETS[name]; render(); });
      presets.appendChild(button);
    });
    var holder = el("div", { "class": "rf-result" }), canvas = el("canvas", { "class": "rf-canvas", "aria-label": "input image" });
    var summary = el("p", { "class": "rf-summary", "aria-live": "polite" });
    [presets, controls, summary, canvas, holder].forEach(function (node) { root.appendChild(node); });

    function render() {
      holder.textContent = "";
      var n = parseInt(input.value, 10);
      try {
        if (!(n >= 1)) throw new Error("input size must be a whole number of at least 1");
        var layers = spec.value.split(",").filter(function (s) { return s.trim(); }).map(parseLayer);
        var result = walk(layers, n), unit = Math.floor((result.size - 1) / 2);
        var start = unit * result.jump - result.offset;
        root.dataset.field = result.field;
        root.dataset.outputSize = result.size;
        holder.appendChild(table(result, n));
        drawInput(canvas, n, start, result.field);
        canvas.style.display = "";
        summary.textContent = "Receptive field " + result.field + "\u00d7" + result.field + ": output unit (" + unit + ", " + unit +
          ") of the " + result.size + "\u00d7" + result.size + " output sees input rows and columns " + start + " to " +
          (start + result.field - 1) + " (shaded; negative indices are padding).";
      } catch (err) {
        root.dataset.field = "";
        root.dataset.outputSize = "";
        canvas.style.display = "none";
        summary.textContent = err.message;
      }
    }

    spec.addEventListener("input", render);
    input.addEventListener("input", render);
    render();
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("div.rf-builder"), build);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

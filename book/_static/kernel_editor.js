/* Kernel editor: a 3x3 kernel, edited by the reader, cross-correlated with a
 * grayscale photo in the browser (zero padding, output the size of the photo:
 * coursekit.layers.correlate2d(photo, kernel, mode="same")).
 *
 * Markup: <div class="kernel-editor" data-photo="camera"></div>
 * The photo comes from _static/photo_<name>.js, written at build time by
 * book/_ext/photo_data.py: window.COURSE_PHOTOS[name] = {size: n, pixels: base64 of n*n bytes}. */
(function () {
  "use strict";

  var PRESETS = {
    identity: [0, 0, 0, 0, 1, 0, 0, 0, 0],
    "box blur": [1 / 9, 1 / 9, 1 / 9, 1 / 9, 1 / 9, 1 / 9, 1 / 9, 1 / 9, 1 / 9],
    sharpen: [-1 / 9, -1 / 9, -1 / 9, -1 / 9, 17 / 9, -1 / 9, -1 / 9, -1 / 9, -1 / 9],
    "vertical edge": [-1, 0, 1, -1, 0, 1, -1, 0, 1],
    "horizontal edge": [-1, -1, -1, 0, 0, 0, 1, 1, 1],
    laplacian: [-1, -1, -1, -1, 8, -1, -1, -1, -1]
  };
  var STATIC = (function () {
    var src = document.currentScript ? document.currentScript.src : "";
    return src.slice(0, src.lastIndexOf("/") + 1);
  })();

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function decode(photo) {
    var bytes = atob(photo.pixels), n = photo.size, x = new Float64Array(n * n);
    for (var i = 0; i < n * n; i++) x[i] = bytes.charCodeAt(i);
    return { n: n, x: x };
  }

  /* Cross-correlation, zero padding of one pixel: out[i, j] = sum_ab k[a, b] x[i + a - 1, j + b - 1]. */
  function correlate(img, k) {
    var n = img.n, x = img.x, out = new Float64Array(n * n);
    for (var i = 0; i < n; i++) {
      for (var j = 0; j < n; j++) {
        var acc = 0;
        for (var a = 0; a < 3; a++) {
          var r = i + a - 1;
          if (r < 0 || r >= n) continue;
          for (var b = 0; b < 3; b++) {
            var c = j + b - 1;
            if (c >= 0 && c < n) acc += k[3 * a + b] * x[r * n + c];
          }
        }
        out[i * n + j] = acc;
      }
    }
    return out;
  }

  /* Paint values on a canvas, stretched linearly from lo (black) to hi (white). */
  function paint(canvas, n, values, lo, hi) {
    canvas.width = n;
    canvas.height = n;
    var ctx = canvas.getContext("2d"), image = ctx.createImageData(n, n), scale = hi > lo ? 255 / (hi - lo) : 0;
    for (var i = 0; i < n * n; i++) {
      var v = Math.round((values[i] - lo) * scale);
      image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = v;
      image.data[4 * i + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
  }

  function range(values) {
    var lo = Infinity, hi = -Infinity;
    for (var i = 0; i < values.length; i++) {
      if (values[i] < lo) lo = values[i];
      if (values[i] > hi) hi = values[i];
    }
    return [lo, hi];
  }

  function fmt(v) { return (Math.abs(v) < 5e-10 ? 0 : v).toFixed(2); }

  function build(root, img) {
    var cells = [], grid = el("div", { "class": "ke-kernel" }), presets = el("div", { "class": "ke-presets" });
    for (var i = 0; i < 9; i++) {
      var cell = el("input", { type: "number", step: "any", value: PRESETS.identity[i], "aria-label": "kernel weight " + (i + 1) });
      cells.push(cell);
      grid.appendChild(cell);
    }
    Object.keys(PRESETS).forEach(function (name) {
      var button = el("button", { type: "button", "data-preset": name }, name);
      button.addEventListener("click", function () {
        // The preset's exact weights are used; the fields show them to 4 decimals.
        PRESETS[name].forEach(function (w, j) { cells[j].value = +w.toFixed(4); });
        render(PRESETS[name]);
      });
      presets.appendChild(button);
    });
    var before = el("canvas", { "class": "ke-photo", "aria-label": "input photo" });
    var after = el("canvas", { "class": "ke-photo", "aria-label": "output of the kernel" });
    var images = el("div", { "class": "ke-images" });
    images.appendChild(before);
    images.appendChild(grid);
    images.appendChild(after);
    var summary = el("p", { "class": "ke-summary", "aria-live": "polite" });
    root.appendChild(presets);
    root.appendChild(images);
    root.appendChild(summary);
    paint(before, img.n, img.x, 0, 255);

    function typed() {
      return cells.map(function (c) { var v = parseFloat(c.value); return isNaN(v) ? 0 : v; });
    }

    function render(k) {
      var out = correlate(img, k), lr = range(out), centre = Math.floor(img.n / 2);
      var probe = out[centre * img.n + centre];
      paint(after, img.n, out, lr[0], lr[1]);
      root.dataset.min = lr[0];
      root.dataset.max = lr[1];
      root.dataset.probe = probe;
      summary.textContent = "Output " + img.n + "\u00d7" + img.n + ", from " + fmt(lr[0]) + " (black) to " + fmt(lr[1]) +
        " (white); at the centre pixel (" + centre + ", " + centre + "): " + fmt(probe) + ".";
    }

    cells.forEach(function (c) { c.addEventListener("input", function () { render(typed()); }); });
    render(PRESETS.identity);
  }

  function withPhoto(name, done) {
    var photos = window.COURSE_PHOTOS || {};
    if (photos[name]) return done(decode(photos[name]));
    var script = el("script", { src: STATIC + "photo_" + name + ".js" });
    script.addEventListener("load", function () { done(decode(window.COURSE_PHOTOS[name])); });
    document.head.appendChild(script);
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("div.kernel-editor"), function (root) {
      withPhoto(root.dataset.photo || "camera", function (img) { build(root, img); });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

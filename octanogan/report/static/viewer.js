/* B-scan viewer of a volume page: slider, arrow keys, overlays, en-face navigation. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("viewer-data").textContent);
  var grid = data.sprite;
  var n = grid.n;
  var viewer = document.getElementById("viewer");
  var slider = document.getElementById("bscan-slider");
  var indexText = document.getElementById("bscan-index");
  var scoreText = document.getElementById("bscan-score");
  var flag = document.getElementById("bscan-flag");
  var qcFlag = document.getElementById("bscan-qc");
  var qcText = document.getElementById("bscan-qc-text");
  var layers = document.querySelectorAll("#viewport .sprite");
  var heat = document.getElementById("heat-layer");
  var contours = document.getElementById("contour-layer");
  var enface = document.getElementById("enface");
  var line = document.getElementById("enface-line");
  var links = document.querySelectorAll("#bscan-list a");
  var current = -1;

  function show(k) {
    k = Math.max(0, Math.min(n - 1, Math.round(k)));
    if (k === current) return;
    current = k;
    var row = Math.floor(k / grid.cols), col = k % grid.cols;
    var shift = "translate(" + (-100 * col / grid.cols) + "%, " + (-100 * row / grid.rows) + "%)";
    layers.forEach(function (layer) { layer.style.transform = shift; });
    viewer.dataset.bscan = String(k);
    slider.value = String(k);
    indexText.textContent = String(k + 1);
    scoreText.textContent = data.scores[k];
    flag.hidden = !data.flagged[k];
    qcFlag.hidden = !data.qc[k];
    qcText.textContent = data.qc[k];
    line.style.top = (100 * (k + 0.5) / n) + "%";
    links.forEach(function (a) { a.classList.toggle("current", Number(a.dataset.bscan) === k); });
    history.replaceState(null, "", "#bscan-" + (k + 1));
  }

  function fromHash() {
    var match = /^#bscan-(\d+)$/.exec(location.hash);
    return match ? Number(match[1]) - 1 : null;
  }

  slider.addEventListener("input", function () { show(Number(slider.value)); });
  document.getElementById("prev").addEventListener("click", function () { show(current - 1); });
  document.getElementById("next").addEventListener("click", function () { show(current + 1); });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target !== slider && target.matches && target.matches("input[type=range], textarea, select")) return;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    var step = { ArrowLeft: -1, ArrowUp: -1, ArrowRight: 1, ArrowDown: 1 }[event.key];
    if (step) show(current + step);
    else if (event.key === "Home") show(0);
    else if (event.key === "End") show(n - 1);
    else return;
    event.preventDefault();
  });

  document.getElementById("heat-toggle").addEventListener("change", function (event) {
    heat.hidden = !event.target.checked;
  });
  document.getElementById("heat-opacity").addEventListener("input", function (event) {
    heat.style.opacity = String(Number(event.target.value) / 100);
  });
  var contourToggle = document.getElementById("contour-toggle");
  if (contourToggle && contours) {
    contourToggle.addEventListener("change", function (event) {
      contours.hidden = !event.target.checked;
    });
  }

  enface.addEventListener("click", function (event) {
    var box = enface.getBoundingClientRect();
    show(Math.floor((event.clientY - box.top) / box.height * n));
  });

  window.addEventListener("hashchange", function () {
    var k = fromHash();
    if (k === null) return;
    show(k);
    viewer.scrollIntoView({ block: "nearest" });
  });

  var initial = fromHash();
  show(initial === null ? data.start : initial);
})();

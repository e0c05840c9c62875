// Shipyard web UI: draws the charts a page declares (uPlot) and ticks compare boxes.
(function () {
  "use strict";
  var palette = ["#0550ae", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#a40e26", "#57606a", "#4d2d00", "#0a3069"];

  function draw(holder) {
    var source = document.getElementById(holder.getAttribute("data-chart"));
    if (!source) { return; }
    var spec = JSON.parse(source.textContent);
    var time = spec.xlabel === "time";
    var series = [{ label: spec.xlabel }];
    var data = [spec.x];
    spec.series.forEach(function (s, i) {
      series.push({ label: s.label, stroke: palette[i % palette.length], width: 1.6, spanGaps: true,
                    points: { show: spec.x.length < 60 } });
      data.push(s.values);
    });
    var width = Math.max(holder.clientWidth || 600, 320);
    var opts = {
      width: width, height: 240, series: series, scales: { x: { time: time } },
      axes: [{ label: time ? "" : spec.xlabel }, {}], cursor: { drag: { x: true, y: false } },
      legend: { live: true }
    };
    holder.innerHTML = "";
    var plot = new uPlot(opts, data, holder);
    holder.setAttribute("data-drawn", String(spec.x.length));
    window.addEventListener("resize", function () {
      plot.setSize({ width: Math.max(holder.clientWidth || 600, 320), height: 240 });
    });
  }

  function limitCompare() {
    var form = document.getElementById("compare-form");
    if (!form) { return; }
    var button = form.querySelector("button[type=submit]");
    function update() {
      var ticked = form.querySelectorAll("input[name=run]:checked").length;
      button.disabled = ticked < 2 || ticked > 10;
      button.textContent = "Compare " + ticked + " runs";
    }
    form.addEventListener("change", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), draw);
    limitCompare();
  });
})();

// Draws each metric chart from the data attributes its canvas carries (no inline script: the CSP forbids it).
// Loaded on every page, it fetches Chart.js only when a page has charts, whichever way the page arrived
// (a full load, or an htmx swap that keeps the first page's <head>).
(function () {
  "use strict";

  var loading = null;

  function withChartLibrary(root, then) {
    if (typeof window.Chart !== "undefined") {
      then();
      return;
    }
    var holder = root.querySelector("[data-chart-library]");
    if (!holder) {
      return;
    }
    if (!loading) {
      loading = document.createElement("script");
      loading.src = holder.dataset.chartLibrary;
      document.head.appendChild(loading);
    }
    loading.addEventListener("load", then);
  }

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function chartsLoaded() {
    return typeof window.Chart !== "undefined";
  }

  // Draws every canvas that has no chart yet. Asking Chart.js (rather than marking the canvas) also
  // redraws the canvases htmx puts back from its history cache on Back, which come without a chart.
  function drawCharts(root) {
    if (!chartsLoaded()) {
      return;
    }
    var brand = cssVar("--brand", "#5b3df5");
    var muted = cssVar("--text-muted", "#6b6880");
    var grid = cssVar("--border", "#e6e4ef");
    root.querySelectorAll("canvas.metric-chart").forEach(function (canvas) {
      if (window.Chart.getChart(canvas)) {
        return;
      }
      var days = JSON.parse(canvas.dataset.days);
      var values = JSON.parse(canvas.dataset.values);
      new window.Chart(canvas, {
        type: "line",
        data: {
          labels: days.map(function (day) { return day.slice(5); }),
          datasets: [{
            label: canvas.dataset.label,
            data: values,
            borderColor: brand,
            backgroundColor: brand + "22",
            fill: true,
            tension: 0.25,
            pointRadius: days.length > 45 ? 0 : 2,
            borderWidth: 2
          }]
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          plugins: { legend: { display: false } },
          scales: {
            x: { ticks: { color: muted, maxTicksLimit: 8 }, grid: { display: false } },
            y: { beginAtZero: true, ticks: { color: muted, precision: 0, maxTicksLimit: 6 }, grid: { color: grid } }
          }
        }
      });
    });
  }

  // Before htmx saves the page for Back, give the canvases back as they came (Chart.js sets an inline
  // style on them, which the CSP would refuse when the page is restored) and stop their resize observers.
  function releaseCharts(root) {
    if (!chartsLoaded()) {
      return;
    }
    root.querySelectorAll("canvas.metric-chart").forEach(function (canvas) {
      var chart = window.Chart.getChart(canvas);
      if (chart) {
        chart.destroy();
      }
      // Chart.js leaves box-sizing behind; the page served the canvas without a style attribute.
      canvas.removeAttribute("style");
    });
  }

  function drawWhenReady() {
    if (document.querySelector("canvas.metric-chart")) {
      withChartLibrary(document, function () { drawCharts(document); });
    }
  }

  document.addEventListener("DOMContentLoaded", drawWhenReady);
  document.addEventListener("htmx:load", drawWhenReady);
  document.addEventListener("htmx:historyRestore", drawWhenReady);
  document.addEventListener("htmx:beforeHistorySave", function (event) { releaseCharts(event.detail.historyElt || document); });
})();

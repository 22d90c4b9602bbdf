// Draws each metric chart from the data attributes its canvas carries (no inline script: the CSP forbids it).
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function drawCharts(root) {
    if (typeof window.Chart === "undefined") {
      return;
    }
    var brand = cssVar("--brand", "#5b3df5");
    var muted = cssVar("--text-muted", "#6b6880");
    var grid = cssVar("--border", "#e6e4ef");
    root.querySelectorAll("canvas.metric-chart").forEach(function (canvas) {
      if (canvas.dataset.drawn) {
        return;
      }
      canvas.dataset.drawn = "1";
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
            y: { beginAtZero: true, ticks: { color: muted, precision: 0 }, grid: { color: grid } }
          }
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:load", function (event) { drawCharts(event.target); });
})();

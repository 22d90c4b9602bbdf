/*
 * The replay of a draw on /certificates/<hash>/reveal: entries counted up, the excluded falling away,
 * a shuffle of names, then the winners one by one. Everything it shows is already in the page;
 * without this script, or with reduced motion asked for, the page simply shows the result.
 */
(function () {
  "use strict";

  var COUNT_MS = 1400;
  var STEP_PAUSE_MS = 500;
  var SHUFFLE_MS = 1600;
  var SHUFFLE_TICK_MS = 80;
  var WINNER_MS = 700;

  function reducedMotion() {
    return window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  }

  function formatted(value) {
    return Math.round(value).toLocaleString("en-US");
  }

  function wait(ms, run) {
    return new Promise(function (resolve) {
      var timer = window.setTimeout(resolve, ms);
      run.timers.push(timer);
    });
  }

  function countUp(element, from, to, run) {
    return new Promise(function (resolve) {
      var started = null;
      function frame(now) {
        if (run.stopped) { resolve(); return; }
        if (started === null) { started = now; }
        var progress = Math.min(1, (now - started) / COUNT_MS);
        var eased = 1 - Math.pow(1 - progress, 3);
        element.textContent = formatted(from + (to - from) * eased);
        if (progress < 1) { window.requestAnimationFrame(frame); } else { resolve(); }
      }
      window.requestAnimationFrame(frame);
    });
  }

  function show(element) {
    if (element) { element.classList.add("is-shown"); }
  }

  function shuffle(element, names, run) {
    if (!element || names.length === 0) { return Promise.resolve(); }
    var index = 0;
    var ticker = window.setInterval(function () {
      element.textContent = "@" + names[index % names.length];
      index += 1 + (index * 7) % 3;
    }, SHUFFLE_TICK_MS);
    run.timers.push(ticker);
    return wait(SHUFFLE_MS, run).then(function () {
      window.clearInterval(ticker);
      element.textContent = "And the winner" + (names.length > 1 ? "s are…" : " is…");
    });
  }

  function play(stage) {
    if (stage._revealRun) {
      stage._revealRun.stopped = true;
      stage._revealRun.timers.forEach(function (timer) { window.clearTimeout(timer); window.clearInterval(timer); });
    }
    var run = { stopped: false, timers: [] };
    stage._revealRun = run;
    var participants = Number(stage.dataset.participants) || 0;
    var eligible = Number(stage.dataset.eligible) || 0;
    var names = [];
    try { names = JSON.parse(stage.dataset.names || "[]"); } catch (error) { names = []; }
    var step = function (name) { return stage.querySelector('[data-reveal-step="' + name + '"]'); };
    var winners = Array.prototype.slice.call(stage.querySelectorAll("[data-reveal-winner]"));
    var entriesCount = stage.querySelector('[data-reveal-count="participants"]');
    var eligibleCount = stage.querySelector('[data-reveal-count="eligible"]');

    stage.classList.add("reveal-playing");
    stage.querySelectorAll(".is-shown").forEach(function (element) { element.classList.remove("is-shown"); });
    stage.classList.remove("reveal-done");

    show(step("entries"));
    return countUp(entriesCount, 0, participants, run)
      .then(function () { return wait(STEP_PAUSE_MS, run); })
      .then(function () {
        if (run.stopped) { return null; }
        show(step("excluded"));
        show(step("eligible"));
        return countUp(eligibleCount, participants, eligible, run);
      })
      .then(function () {
        if (run.stopped) { return null; }
        show(step("shuffle"));
        return shuffle(stage.querySelector("[data-reveal-shuffle]"), names, run);
      })
      .then(function () {
        if (run.stopped) { return null; }
        show(step("winners"));
        return winners.reduce(function (chain, winner) {
          return chain.then(function () {
            if (run.stopped) { return null; }
            show(winner);
            return wait(WINNER_MS, run);
          });
        }, Promise.resolve());
      })
      .then(function () {
        if (!run.stopped) { stage.classList.add("reveal-done"); }
      });
  }

  function init(root) {
    (root || document).querySelectorAll("[data-reveal]").forEach(function (stage) {
      if (stage.dataset.revealReady) { return; }
      stage.dataset.revealReady = "1";
      var replay = stage.querySelector("[data-reveal-replay]");
      if (reducedMotion()) { return; }
      if (replay) {
        replay.hidden = false;
        replay.addEventListener("click", function () { play(stage); });
      }
      play(stage);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(); });
  } else {
    init();
  }
  document.addEventListener("htmx:afterSettle", function (event) { init(event.target); });
})();

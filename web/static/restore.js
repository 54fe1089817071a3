// Restore tests: live progress of a waiting or running test (progressive enhancement: without
// JavaScript the page offers a refresh link). Listens to the run's server-sent events, or
// polls its progress when EventSource is missing or fails; reloads the page when the test ends.
"use strict";
(() => {
  const box = document.querySelector("[data-progress-url]");
  if (!box) return;
  const bar = box.querySelector(".bar");
  const fill = bar && bar.querySelector("span");
  const text = box.querySelector("[data-progress-text]");
  const status = document.querySelector("[data-progress-status]");
  let done = false;
  const show = (p) => {
    if (done) return;
    const pct = Math.max(0, Math.min(100, Math.round((p.progress && p.progress.percent) || 0)));
    if (fill) fill.style.width = pct + "%";
    if (bar) bar.setAttribute("aria-valuenow", String(pct));
    if (status) status.textContent = p.status;
    if (text) {
      const pr = p.progress || {};
      text.textContent = [pr.level, pr.phase, pct + "%"].filter(Boolean).join(" · ");
    }
    if (p.final) {
      done = true;
      window.location.reload();
    }
  };
  const poll = async () => {
    while (!done) {
      try {
        const res = await fetch(box.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (res.ok) show(await res.json());
      } catch (e) { /* keep trying */ }
      await new Promise((r) => setTimeout(r, 2000));
    }
  };
  if (window.EventSource && box.dataset.eventsUrl) {
    const es = new EventSource(box.dataset.eventsUrl);
    es.addEventListener("progress", (ev) => {
      try { show(JSON.parse(ev.data)); } catch (e) { /* ignore */ }
      if (done) es.close();
    });
    es.onerror = () => {
      es.close();
      if (!done) poll();
    };
  } else {
    poll();
  }
})();

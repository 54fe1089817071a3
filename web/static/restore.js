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
  const levels = document.querySelector("[data-levels]");
  let done = false;
  // The words, units and machine values' names, in the page's language (#page-words).
  let words = {};
  try { words = JSON.parse(document.getElementById("page-words").textContent) || {}; } catch (e) { /* English values */ }
  const fill1 = (pattern, values) => Object.keys(values).reduce((s, k) => s.split("{" + k + "}").join(values[k]), String(pattern || ""));
  const value = (v) => (words.values && words.values[v]) || v;
  const phase = (p) => (words.phases && words.phases[p]) || p;
  const decimal = (x) => x.toFixed(1).replace(".", words.decimal || ".");
  // Sizes in SI units, as the portal writes them (1 kB = 1000 B; « 1,5 Go » in French).
  const size = (b) => {
    const units = words.units || ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    while (b >= 1000 && i < units.length - 1) { b /= 1000; i++; }
    return (i === 0 ? String(b) : decimal(b)) + (words.space || " ") + units[i];
  };
  const eta = (s) => (s < 60 ? fill1(words.eta_s, { n: Math.max(1, s) }) : fill1(words.eta_min, { n: Math.round(s / 60) }));
  const stateClass = { passed: "good", warning: "warn", failed: "bad", error: "unjudged" };
  // The live level log: a row for each level finished since the page was rendered.
  const logLevels = (list) => {
    if (!levels || !list) return;
    for (const l of list) {
      if (levels.querySelector('[data-level="' + l.level + '"]')) continue;
      const empty = levels.querySelector("[data-empty]");
      if (empty) empty.remove();
      const tr = document.createElement("tr");
      tr.dataset.level = l.level;
      const cells = [value(l.level), "", l.said || l.summary, fill1(words.seconds, { n: decimal(l.duration_ms / 1000) })];
      cells.forEach((c, i) => {
        const td = document.createElement("td");
        if (i === 1) {
          const span = document.createElement("span");
          span.className = "state " + (stateClass[l.outcome] || "");
          span.textContent = value(l.outcome);
          td.appendChild(span);
        } else {
          td.textContent = c;
        }
        tr.appendChild(td);
      });
      levels.appendChild(tr);
    }
  };
  const show = (p) => {
    if (done) return;
    const pct = Math.max(0, Math.min(100, Math.round((p.progress && p.progress.percent) || 0)));
    if (fill) fill.style.width = pct + "%";
    if (bar) bar.setAttribute("aria-valuenow", String(pct));
    if (status) status.textContent = value(p.status);
    const pr = p.progress || {};
    if (text) {
      const parts = [pr.level && value(pr.level), pr.phase && phase(pr.phase), pct + "%"];
      if (pr.bytes_total) parts.push(fill1(words.of, { a: size(pr.bytes_done || 0), b: size(pr.bytes_total) }));
      if (pr.rate_bps) parts.push(size(pr.rate_bps) + "/s");
      if (pr.eta_seconds != null) parts.push(eta(pr.eta_seconds));
      text.textContent = parts.filter(Boolean).join(" · ");
    }
    logLevels(pr.levels_done);
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

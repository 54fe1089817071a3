// Archipelago portal: keeps relative times true on a page left open. Every <time data-clock
// datetime="…"> the server rendered (internal/portal/when.go) is
// rewritten every 30 s. The words come from the page (#clock-words, rendered from
// when.go's clockWords), never from this file, so a translated page stays translated.
"use strict";
(() => {
  const block = document.getElementById("clock-words");
  if (!block) return;
  let cfg;
  try { cfg = JSON.parse(block.textContent); } catch (e) { return; }
  const words = cfg.words || {};
  // Count from the server's clock: the browser's may be off.
  const skew = Date.parse(cfg.now) - Date.now();
  const fill = (pattern, key, value) => String(pattern || "").split("{" + key + "}").join(value);
  // span mirrors clockWords.span: 42 s, 5 min, 3 h (under 48 h), 2 d.
  const span = (ms) => {
    ms = Math.max(ms, 0);
    const s = Math.floor(ms / 1000);
    if (s < 60) return fill(words.s, "n", s);
    if (s < 3600) return fill(words.min, "n", Math.floor(s / 60));
    if (s < 48 * 3600) return fill(words.h, "n", Math.floor(s / 3600));
    return fill(words.d, "n", Math.floor(s / 86400));
  };
  const refresh = () => {
    const now = Date.now() + skew;
    for (const el of document.querySelectorAll("time[data-clock][datetime]")) {
      const at = Date.parse(el.getAttribute("datetime"));
      if (Number.isNaN(at)) continue;
      const d = now - at;
      let text;
      if (el.dataset.clock === "age") text = fill(words.old, "t", span(d));
      else if (d > -5000 && d < 5000) text = words.just_now;
      else if (d < 0) text = fill(words.in, "t", span(-d));
      else text = fill(words.ago, "t", span(d));
      if (text && el.textContent !== text) el.textContent = text;
    }
  };
  refresh();
  setInterval(refresh, 30000);
})();

// Archipelago portal: progressive enhancement only; every page works without it.
// Its words come from the page (#page-words, in the reader's language), never its own.
"use strict";
const pageWords = () => {
  try { return JSON.parse(document.getElementById("page-words").textContent) || {}; } catch (e) { return {}; }
};
document.addEventListener("click", async (ev) => {
  const btn = ev.target.closest("button[data-copy]");
  if (!btn) return;
  const el = document.getElementById(btn.dataset.copy);
  if (!el) return;
  const words = pageWords();
  if (!btn.dataset.label) btn.dataset.label = btn.textContent;
  try {
    await navigator.clipboard.writeText(el.textContent.trim());
    btn.textContent = words.copied || btn.dataset.label;
  } catch (e) {
    const range = document.createRange();
    range.selectNodeContents(el);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    btn.textContent = words.selected || btn.dataset.label;
  }
  setTimeout(() => { btn.textContent = btn.dataset.label; }, 2500);
});

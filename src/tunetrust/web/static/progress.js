// Live progress for an import: polls the job's JSON every second and updates the bar;
// the page reloads itself when the job ends. Without scripts the page refreshes instead.
"use strict";
(function () {
  const box = document.getElementById("job");
  if (!box) return;
  const bar = document.getElementById("job-progress");
  const stage = document.getElementById("job-stage");
  async function poll() {
    try {
      const r = await fetch(box.dataset.status, { headers: { "Accept": "application/json" }, credentials: "same-origin" });
      if (!r.ok) return;
      const job = await r.json();
      if (job.state === "done" || job.state === "failed") { window.location.reload(); return; }
      stage.textContent = job.stage;
      if (job.total > 0) { bar.value = Math.round(100 * job.done / job.total); bar.textContent = bar.value + " %"; }
    } catch (e) { /* the page's own refresh takes over */ }
    window.setTimeout(poll, 1000);
  }
  window.setTimeout(poll, 500);
})();

// The buyer portal's live spec check: as a buyer types a release spec, it is sent to the
// API's /specs/check with this session's CSRF token and what comes back is shown (the
// plan, or each field at fault). Optional: the form's "Check the spec" button does the
// same on the server without a script.
"use strict";
(function () {
  const form = document.getElementById("request-form");
  const spec = document.getElementById("spec");
  const out = document.getElementById("live-check");
  if (!form || !spec || !out) return;
  let timer = 0;
  let asked = 0;
  function show(lines, bad) {
    out.replaceChildren(...lines.map(function (text) {
      const line = document.createElement("span");
      line.textContent = text;
      line.className = "line";
      return line;
    }));
    out.classList.toggle("problem", bad);
  }
  async function check() {
    const mine = ++asked;
    if (!spec.value.trim()) { show([], false); return; }
    try {
      const r = await fetch(form.dataset.check, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": form.dataset.csrf },
        body: JSON.stringify({ spec: spec.value }),
      });
      const body = await r.json();
      if (mine !== asked) return;  // a newer check is under way
      if (r.ok) {
        show(["Live check: " + body.members_included + " members would be included now, ε " +
          body.epsilon_per_member + " each; " + body.outcome.statement + "."], false);
      } else if (body.errors && body.errors.length) {
        show(body.errors.map(function (e) { return "Live check: " + e.field + ": " + e.detail; }), true);
      } else {
        show(["Live check: " + body.detail], true);
      }
    } catch (e) { /* the Check button still works */ }
  }
  spec.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(check, 500);
  });
})();

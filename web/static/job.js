// Show a job and poll its API until it ends: status, sentence, top-5 bars, face boxes; Cancel while it runs.
(function () {
  const root = document.getElementById("job");
  const api = root.dataset.api;
  const svg = root.querySelector("svg.boxes");
  const el = (id) => document.getElementById(id);
  const ENDED = ["succeeded", "failed", "canceled"];

  function render(job) {
    if (el("status").textContent !== job.status) el("status").textContent = job.status;  // aria-live speaks changes only
    el("status").className = "status " + job.status;
    el("cancel-form").hidden = ENDED.includes(job.status);
    el("correction").hidden = job.status !== "succeeded";  // "Not right?" once there is an answer
    const w = job.webhook;
    el("webhook").textContent = w ? "webhook " + w.status + " after " + w.attempts + " attempt(s)" +
      (w.last_error ? ": " + w.last_error : "") : "";
    if (job.status === "failed" && job.error) {
      el("error").hidden = false;
      el("error").textContent = job.error.message;
    }
    const r = job.result;
    if (!r) return;
    el("sentence").textContent = r.sentence;
    const bars = el("bars");
    bars.replaceChildren();
    for (const b of r.breeds || []) {
      const li = document.createElement("li");
      const pct = (b.probability * 100).toFixed(1);
      li.innerHTML = '<span class="name"></span><span class="bar"><span></span></span><span class="pct"></span>';
      li.querySelector(".name").textContent = b.breed;
      li.querySelector(".bar span").style.width = pct + "%";
      li.querySelector(".pct").textContent = pct + "%";
      bars.appendChild(li);
    }
    svg.replaceChildren();
    for (const f of r.faces || []) {
      const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      rect.setAttribute("x", f.x); rect.setAttribute("y", f.y);
      rect.setAttribute("width", f.w); rect.setAttribute("height", f.h);
      svg.appendChild(rect);
    }
    const m = r.model || {};
    el("meta").textContent = "dog score " + (r.dog_score * 100).toFixed(1) + "% · " + m.backbone + " (" + m.weights + ") · head " + m.head;
  }

  // Done when the job ended and its webhook, if any, is no longer pending.
  const done = (job) => ENDED.includes(job.status) && !(job.webhook && job.webhook.status === "pending");

  el("cancel-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    el("cancel").disabled = true;
    try {
      const res = await fetch(api, { method: "DELETE", credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": root.dataset.csrf } });
      const body = await res.json();
      if (res.ok || res.status === 409) {
        render(res.ok ? body : await (await fetch(api, { credentials: "same-origin" })).json());
      } else {
        el("error").hidden = false;
        el("error").textContent = body.error ? body.error.message : "Could not cancel.";
      }
    } finally {
      el("cancel").disabled = false;
    }
  });

  const initial = JSON.parse(document.getElementById("job-data").textContent);
  render(initial);
  if (!done(initial)) window.pollUntil(api, render, done);
})();

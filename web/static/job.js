// Show a job and poll its API until it ends: status, sentence, top-5 bars, face boxes.
(function () {
  const root = document.getElementById("job");
  const api = root.dataset.api;
  const svg = root.querySelector("svg.boxes");
  const el = (id) => document.getElementById(id);

  function render(job) {
    el("status").textContent = job.status;
    el("status").className = "status " + job.status;
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

  async function poll(delay) {
    try {
      const res = await fetch(api, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (res.ok) {
        const job = await res.json();
        render(job);
        if (job.status === "succeeded" || job.status === "failed") return;
      }
    } catch (e) { /* network blip: try again */ }
    setTimeout(() => poll(Math.min(delay * 1.5, 5000)), delay);
  }

  const initial = JSON.parse(document.getElementById("job-data").textContent);
  render(initial);
  if (initial.status !== "succeeded" && initial.status !== "failed") poll(500);
})();

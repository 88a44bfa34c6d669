// Follow a JSON API until done(answer), each answer going to render. Pushed first: the API's
// server-sent events (api + "/events": a `status` event per change, then `done` with the whole
// answer); where EventSource is missing or fails before `done`, poll, backing off from 0.5 s to 5 s.
window.pollUntil = function (api, render, done) {
  async function fetchOnce() {
    const res = await fetch(api, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!res.ok) return null;
    const answer = await res.json();
    render(answer);
    return answer;
  }
  async function poll(delay) {
    try {
      const answer = await fetchOnce();
      if (answer && done(answer)) return;
    } catch (e) { /* network blip: try again */ }
    setTimeout(() => poll(Math.min(delay * 1.5, 5000)), delay);
  }
  if (!window.EventSource) { poll(500); return; }
  const source = new EventSource(api + "/events", { withCredentials: true });
  let finished = false;
  window.dogbreedUpdates = "events";  // which way this page follows (the browser tests read it)
  source.addEventListener("status", () => { fetchOnce().catch(() => {}); });
  source.addEventListener("done", (event) => {
    finished = true;
    source.close();
    render(JSON.parse(event.data));
  });
  source.onerror = () => {
    if (finished) return;
    source.close();  // refused (503 beyond the cap), cut, or not offered: today's polling
    window.dogbreedUpdates = "polling";
    poll(500);
  };
};

// Poll a JSON API until done(answer): each answer goes to render; the wait backs off from 0.5 s to 5 s.
window.pollUntil = function (api, render, done) {
  async function poll(delay) {
    try {
      const res = await fetch(api, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (res.ok) {
        const answer = await res.json();
        render(answer);
        if (done(answer)) return;
      }
    } catch (e) { /* network blip: try again */ }
    setTimeout(() => poll(Math.min(delay * 1.5, 5000)), delay);
  }
  poll(500);
};

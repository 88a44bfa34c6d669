// An album's grid: one card per file, filled in as its job finishes; polls the API until all are done.
(function () {
  const grid = document.getElementById("grid");
  const summary = document.getElementById("summary");
  const api = grid.dataset.api;

  function card(item) {
    const li = document.createElement("li");
    li.className = "card";
    if (item.error && !item.id) {
      li.innerHTML = '<span class="name"></span><span class="status failed">rejected</span><span class="what"></span>';
      li.querySelector(".name").textContent = item.filename || "(no name)";
      li.querySelector(".what").textContent = item.error.message;
      return li;
    }
    li.dataset.job = item.id;
    li.innerHTML = '<a><img alt=""><span class="status"></span><span class="what"></span></a>';
    li.querySelector("a").href = item.page_url;
    li.querySelector("img").src = item.thumbnail_url;
    li.querySelector("img").alt = item.image.filename || "photo";
    const status = li.querySelector(".status");
    status.textContent = item.status;
    status.className = "status " + item.status;
    li.querySelector(".what").textContent = item.result ? item.result.sentence
      : item.error ? item.error.message : item.status === "canceled" ? "canceled" : "waiting…";
    return li;
  }

  function render(album) {
    grid.replaceChildren(...album.jobs.map(card));
    const s = album.summary;
    const finished = s.succeeded + s.failed + s.canceled + s.rejected;
    summary.textContent = finished + " of " + s.total + " done" + (s.done ? "" : "…");
  }

  const initial = JSON.parse(document.getElementById("album-data").textContent);
  render(initial);
  if (!initial.summary.done) window.pollUntil(api, render, (album) => album.summary.done);
})();

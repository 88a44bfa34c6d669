// Drag-and-drop onto the upload form: dropped files become the file input's files, then the form posts as usual.
(function () {
  const drop = document.getElementById("drop");
  const input = document.getElementById("image");
  const chosen = document.getElementById("chosen");

  function show() {
    const n = input.files.length;
    chosen.textContent = n === 0 ? "" : n === 1 ? "1 photo: " + input.files[0].name : n + " photos (an album)";
  }

  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      show();
    }
  });
  input.addEventListener("change", show);
})();

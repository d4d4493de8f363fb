// The import page while a file is checked or imported: the progress bar follows the background worker, and the
// page reloads once the step has finished.
const section = document.querySelector(".import-progress");
if (section) {
  const bar = section.querySelector("progress");
  const text = section.querySelector(".progress-text");
  const started = section.dataset.status;
  const poll = async () => {
    try {
      const response = await fetch(section.dataset.progressUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const state = await response.json();
        if (state.status !== started || state.stalled) {
          window.location.reload();
          return;
        }
        if (state.total > 0) {
          bar.max = state.total;
          bar.value = Math.min(state.done, state.total);
          text.textContent = `${state.done.toLocaleString("sv-SE")} / ${state.total.toLocaleString("sv-SE")}`;
        }
      }
    } catch (error) {
      // A network hiccup: try again at the next tick.
    }
    window.setTimeout(poll, 1000);
  };
  window.setTimeout(poll, 1000);
}

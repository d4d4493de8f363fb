// The forum's navigation on a narrow screen: a "Menu" button opens and closes the list of pages.
const toggle = document.querySelector(".nav-toggle");
if (toggle) {
  const nav = toggle.closest(".forum-nav");
  toggle.addEventListener("click", () => {
    const open = !nav.classList.contains("nav-open");
    nav.classList.toggle("nav-open", open);
    toggle.setAttribute("aria-expanded", String(open));
  });
}
// A menu (the forum switcher, the administration) closes when one clicks elsewhere or presses Escape.
document.addEventListener("click", (event) => {
  for (const menu of document.querySelectorAll("details.menu[open]")) {
    if (!menu.contains(event.target)) menu.open = false;
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  for (const menu of document.querySelectorAll("details.menu[open]")) {
    menu.open = false;
    menu.querySelector("summary").focus();
  }
});

// The service worker lets the app open without network (templates/lagesbild/sw.js). A map page opened before
// it took over asks to be kept, so that it opens offline next time too.
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").then(() => navigator.serviceWorker.ready).then((registration) => {
    if (/^\/f\/[^/]+\/$/.test(location.pathname)) {
      registration.active?.postMessage({ type: "keep-page", url: location.pathname });
    }
  }).catch(() => {}); // without it the app works as before, online
}

// The map's search box: the forum's places and the place names of deviations while you type, addresses too
/* global maplibregl */
// when you press Enter or Sök (the geocoder is asked by the server, once per search, never as you type).
// Choosing a result moves the map there; while a position is being chosen for a report, the cross is then on
// it, and otherwise "Rapportera här" starts a report at it.

const TYPE_DELAY_MS = 250;

export function setUpSearch({ map, api, t, format, canReport, isPicking, startPicking }) {
  const form = document.getElementById("map-search");
  if (!form) return;
  const input = form.elements.q;
  const results = document.getElementById("map-search-results");
  const status = document.getElementById("map-search-status");
  const chosen = document.getElementById("map-search-chosen");
  let timer = null;
  let sequence = 0; // answers that arrive after a newer search was started are dropped
  let marker = null;

  function clear() {
    results.replaceChildren();
    results.hidden = true;
  }

  function describe(result) {
    if (result.kind === "place") return t.searchPlace;
    if (result.kind === "placeName") {
      return format(result.count === 1 ? t.searchPlaceNameOne : t.searchPlaceNameMany, { count: result.count });
    }
    return t.searchAddress;
  }

  function render(answer, askedAddresses) {
    results.replaceChildren();
    for (const result of answer.results) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "search-result";
      const label = document.createElement("span");
      label.className = "search-label";
      label.textContent = result.label;
      const kind = document.createElement("span");
      kind.className = "search-kind";
      kind.textContent = describe(result);
      button.append(label, kind);
      button.addEventListener("click", () => choose(result));
      item.append(button);
      results.append(item);
    }
    results.hidden = answer.results.length === 0;
    const parts = [answer.results.length ? format(t.searchCount, { count: answer.results.length }) : t.searchNone];
    if (answer.addresses === "notAsked" && !askedAddresses) parts.push(t.searchAskAddresses);
    if (answer.addresses === "unavailable") parts.push(t.searchAddressesUnavailable);
    status.textContent = parts.join(" ");
  }

  async function run(askAddresses) {
    const query = input.value.trim();
    const mine = ++sequence;
    if (query.length < 2) {
      clear();
      status.textContent = askAddresses ? t.searchTooShort : "";
      return;
    }
    const params = new URLSearchParams({ q: query });
    if (askAddresses) params.set("addresses", "true");
    if (askAddresses) status.textContent = t.searching;
    try {
      const answer = await api(`/search?${params}`);
      if (mine === sequence) render(answer, askAddresses);
    } catch (error) {
      if (mine === sequence) { clear(); status.textContent = error.message || t.searchError; }
    }
  }

  function choose(result) {
    clear();
    const centre = [result.lon, result.lat];
    let zoom = 17;
    if (result.bbox && (result.bbox[0] !== result.bbox[2] || result.bbox[1] !== result.bbox[3])) {
      const camera = map.cameraForBounds([[result.bbox[0], result.bbox[1]], [result.bbox[2], result.bbox[3]]],
                                         { padding: 60 });
      if (camera) zoom = Math.min(17, camera.zoom);
    }
    map.flyTo({ center: centre, zoom });
    if (!marker) {
      const element = document.createElement("div");
      element.className = "search-marker";
      marker = new maplibregl.Marker({ element });
    }
    marker.setLngLat(centre).addTo(map);
    input.value = result.label;
    status.textContent = "";
    if (isPicking()) {
      // The cross is at the map's centre, and so now is the result: "Använd krysset" reports there.
      document.getElementById("pick-centre")?.focus();
      return;
    }
    chosen.querySelector("[data-label]").textContent = format(t.searchShowing, { label: result.label });
    chosen.hidden = false;
    chosen.querySelector("[data-action=close]").focus();
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => run(false), TYPE_DELAY_MS);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    run(true);
  });
  // Down from the box into the results, up and down between them, Escape back to the box.
  form.addEventListener("keydown", (event) => {
    const buttons = [...results.querySelectorAll("button")];
    const at = buttons.indexOf(document.activeElement);
    if (event.key === "ArrowDown" && buttons.length) {
      event.preventDefault();
      buttons[Math.min(at + 1, buttons.length - 1)].focus();
    } else if (event.key === "ArrowUp" && at >= 0) {
      event.preventDefault();
      (at === 0 ? input : buttons[at - 1]).focus();
    } else if (event.key === "Escape") {
      clear();
      input.focus();
    }
  });
  const report = chosen.querySelector("[data-action=report]");
  if (canReport) {
    report.addEventListener("click", () => {
      chosen.hidden = true;
      map.jumpTo({ center: marker.getLngLat() });
      startPicking();
    });
  } else {
    report.remove();
  }
  chosen.querySelector("[data-action=close]").addEventListener("click", () => {
    chosen.hidden = true;
    marker?.remove();
    input.focus();
  });
}

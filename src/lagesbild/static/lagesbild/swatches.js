// Colour swatches take their colour from data-color: the Content-Security-Policy forbids style attributes.
for (const swatch of document.querySelectorAll(".swatch[data-color], .key[data-color], .heat[data-color]")) {
  swatch.style.background = swatch.dataset.color;
  if (swatch.dataset.ink) swatch.style.color = swatch.dataset.ink;  // text in the colour that contrasts most
}

// mercato storefront: small enhancements only; every page works without this file.
// A button marked data-once is disabled after its form is sent, so a double click sends the
// form once (the checkout form also carries an idempotency key for when it is sent twice).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  for (const button of form.querySelectorAll("button[data-once]")) {
    if (button.dataset.sent) {
      event.preventDefault();
      return;
    }
    button.dataset.sent = "1";
    button.setAttribute("aria-disabled", "true");
    button.classList.add("sending");
  }
});

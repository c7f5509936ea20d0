// Starts Swagger UI on the shop's merged OpenAPI document. A file rather than an inline script,
// so the page's Content-Security-Policy can allow scripts from the shop's own origin only.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // The default sends the document to a third-party validator and shows its badge.
  validatorUrl: null,
});

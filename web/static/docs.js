// Swagger UI (files from the swagger-ui-bundle pip package) on our OpenAPI document.
(function () {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: root.dataset.spec, dom_id: "#swagger-ui", deepLinking: true });
})();

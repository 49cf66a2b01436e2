// Shows the shop's OpenAPI document with Swagger UI (bundled, served by the shop itself).
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({ url: root.dataset.specUrl, domNode: root, deepLinking: true });

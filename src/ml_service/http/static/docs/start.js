// Starts Swagger UI on this server's OpenAPI document. When the server asks for an API key,
// the key the page stored for this tab (or one asked for once) goes with every request.
(function () {
  "use strict";
  var STORE = "ml-service.api-key";

  function withKey(request) {
    var key = window.sessionStorage.getItem(STORE);
    if (key) {
      request.headers.Authorization = "Bearer " + key;
    }
    return request;
  }

  function start() {
    window.ui = window.SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      requestInterceptor: withKey,
    });
  }

  window.addEventListener("load", function () {
    window.fetch("/openapi.json", withKey({ headers: {} })).then(function (response) {
      if (response.status === 401) {
        var key = window.prompt("This server needs an API key for its documentation:");
        if (key) {
          window.sessionStorage.setItem(STORE, key.trim());
        }
      }
      start();
    }, start);
  });
})();

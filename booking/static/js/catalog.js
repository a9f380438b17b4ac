/* The catalog's search form: tidy URLs (empty filters are not sent) and
   re-search when the sort order changes. Works without it too. */
(function () {
  "use strict";
  var form = document.getElementById("catalog-search");
  if (!form) return;
  form.addEventListener("submit", function () {
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && !el.disabled && el.value === "" && el.type !== "submit") {
        el.disabled = true;
        window.setTimeout(function () { el.disabled = false; }, 0);
      }
    });
  });
  var sort = document.getElementById("sort");
  if (sort) {
    sort.addEventListener("change", function () {
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    });
  }
})();

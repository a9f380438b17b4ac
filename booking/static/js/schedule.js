/* The lab schedule's day timeline: each hour mark and booking block says
   where it sits (data-left, data-width: per cent of the day); this places
   them (the Content-Security-Policy allows no inline style). The list
   under each timeline says the same in words. */
(function () {
  "use strict";
  document.querySelectorAll(".timeline [data-left]").forEach(function (el) {
    el.style.left = el.dataset.left + "%";
    if (el.dataset.width) el.style.width = el.dataset.width + "%";
  });
})();

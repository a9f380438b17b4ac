// The approval queue: a "select all" box over the request checkboxes.
// Without scripts the box stays hidden and each request is ticked by hand.
(function () {
  "use strict";
  document.querySelectorAll("input[data-select-all]").forEach(function (master) {
    var form = master.form;
    var name = master.getAttribute("data-select-all");
    var boxes = function () {
      return Array.prototype.slice.call(form.querySelectorAll('input[type="checkbox"][name="' + name + '"]'));
    };
    var sync = function () {
      var all = boxes();
      var ticked = all.filter(function (box) { return box.checked; }).length;
      master.checked = all.length > 0 && ticked === all.length;
      master.indeterminate = ticked > 0 && ticked < all.length;
    };
    master.hidden = false;
    master.addEventListener("change", function () {
      boxes().forEach(function (box) { box.checked = master.checked; });
      master.indeterminate = false;
    });
    form.addEventListener("change", function (event) {
      if (event.target !== master && event.target.name === name) { sync(); }
    });
    sync();
  });
})();

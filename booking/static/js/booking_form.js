/* The booking form and the week view that fills it.

   - A free time in the week view (links drawn by catalog_week.js) gives the
     form its start (where it was clicked, on the resource's grid; its
     beginning when chosen by keyboard) and a default length. On a page with
     a form (#booking-form, #reschedule-form) the fields are filled in place;
     elsewhere (the resource page) the link opens the booking form.
   - A suggested free slot (a button after a conflict) refills the form.
   - The estimate panel (#estimate) is fetched again from the server as the
     fields change: the server prices and checks, this script only shows.

   Times are platform-local "YYYY-MM-DDTHH:MM" texts; the arithmetic treats
   them as UTC so the browser's own time zone never matters. */
(function () {
  "use strict";
  var week = document.getElementById("week");
  var form = document.getElementById("booking-form") || document.getElementById("reschedule-form");

  function parse(text) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(text || "");
    if (!m) return null;
    return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]) / 60000;
  }

  function format(minutes) {
    return new Date(minutes * 60000).toISOString().slice(0, 16);
  }

  function onGrid(minutes, grid, up) {
    var rest = ((minutes % grid) + grid) % grid;  // the grid runs from local midnight
    if (!rest) return minutes;
    return up ? minutes + grid - rest : minutes - rest;
  }

  function pickedSpan(link, event) {
    var grid = parseInt(week.dataset.granularity, 10) || 30;
    var length = parseInt(week.dataset.defaultMinutes, 10) || 60;
    var from = parse(link.dataset.start), to = parse(link.dataset.end);
    var start = onGrid(from, grid, true);
    if (event.detail > 0 && event.clientY) {  // a pointer: where it was clicked
      var box = link.getBoundingClientRect();
      var share = Math.min(Math.max((event.clientY - box.top) / (box.height || 1), 0), 1);
      start = Math.max(start, onGrid(from + share * (to - from), grid, false));
    }
    var latest = onGrid(to, grid, false);
    if (start + length > latest && latest - length >= onGrid(from, grid, true)) {
      start = latest - length;  // keep the default length inside the free time
    }
    var end = Math.min(start + length, latest);
    if (end <= start) end = start + length;
    return { start: format(start), end: format(end) };
  }

  function fill(start, end) {
    var startField = form.querySelector("[name=start]");
    var endField = form.querySelector("[name=end]");
    startField.value = start;
    endField.value = end;
    refresh();
    startField.scrollIntoView({ block: "center", behavior: "smooth" });
    startField.focus({ preventScroll: true });
  }

  if (week) {
    week.addEventListener("click", function (event) {
      var link = event.target.closest("a.slot.free");
      if (!link) return;
      event.preventDefault();
      var span = pickedSpan(link, event);
      if (form) {
        fill(span.start, span.end);
      } else {
        window.location.href = week.dataset.bookUrl + "?start=" + encodeURIComponent(span.start) +
          "&end=" + encodeURIComponent(span.end);
      }
    });
  }

  if (!form) return;
  var panel = document.getElementById("estimate");
  var timer = null;
  var serial = 0;

  form.addEventListener("click", function (event) {
    var button = event.target.closest("button.suggestion");
    if (!button) return;
    event.preventDefault();
    fill(button.dataset.start, button.dataset.end);
  });

  function query() {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (key !== "csrf_token" && key !== "action" && typeof value === "string") {
        params.append(key, value);
      }
    });
    return params.toString();
  }

  function refresh() {
    if (!panel || !form.dataset.estimateUrl) return;
    clearTimeout(timer);
    timer = setTimeout(load, 300);
  }

  function load() {
    var mine = ++serial;
    var focused = document.activeElement;
    var focusedVoucher = focused && focused.name === "voucher_id" ? focused.value : null;
    panel.setAttribute("aria-busy", "true");
    fetch(form.dataset.estimateUrl + "?" + query(), {
      headers: { "Accept": "text/html" },
      credentials: "same-origin"
    })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.text();
      })
      .then(function (html) {
        if (mine !== serial) return;  // an older answer arriving late
        panel.innerHTML = html;
        if (focusedVoucher !== null) {
          var again = panel.querySelector("input[name=voucher_id][value='" + focusedVoucher + "']");
          if (again) again.focus();
        }
      })
      .catch(function () { /* the server's own answer on submit still holds */ })
      .then(function () { panel.removeAttribute("aria-busy"); });
  }

  form.addEventListener("change", function (event) {
    if (event.target.name && event.target.name !== "purpose") refresh();
  });
  form.addEventListener("input", function (event) {
    if (["units", "samples"].indexOf(event.target.name) >= 0) refresh();
  });
})();

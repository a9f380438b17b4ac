/* A week of free and busy times on a resource's page, drawn from
   GET /api/v1/resources/{id}/availability?from=&to= ({"free": [...],
   "busy": [...]}). Times are shown in the platform's time zone (the offset
   the page gives), whatever the browser's zone. If the schedule cannot be
   fetched the page says so and stays usable. */
(function () {
  "use strict";
  var root = document.getElementById("week");
  if (!root) return;
  var grid = root.querySelector(".week-grid");
  var status = root.querySelector(".week-status");
  var label = root.querySelector(".week-label");
  var weekdays = (root.dataset.weekdays || "").split("|");
  var offset = root.dataset.offset || "+08:00";
  var offsetMinutes = (offset[0] === "-" ? -1 : 1) *
    (parseInt(offset.slice(1, 3), 10) * 60 + parseInt(offset.slice(4, 6), 10));
  var DAY = 86400000;
  var weekStart = root.dataset.weekStart;
  var capacity = parseInt(root.dataset.capacity, 10) || 1;

  function addDays(isoDate, days) {
    var ms = Date.parse(isoDate + "T00:00:00Z") + days * DAY;
    return new Date(ms).toISOString().slice(0, 10);
  }

  // Minutes since the platform-local midnight of `isoDate`, for an instant.
  function localMinutes(instantText, isoDate) {
    var ms = Date.parse(instantText);
    var dayStart = Date.parse(isoDate + "T00:00:00Z") - offsetMinutes * 60000;
    return (ms - dayStart) / 60000;
  }

  function clock(minutes) {
    minutes = Math.max(0, Math.min(1440, Math.round(minutes)));
    var h = Math.floor(minutes / 60), m = minutes % 60;
    return (h < 10 ? "0" : "") + h + ":" + (m < 10 ? "0" : "") + m;
  }

  // Where the page books (data-book-url), a free time is a link to the
  // booking form with its local start and end (js/booking_form.js refines it).
  function localText(day, minutes) {
    return minutes >= 1440 ? addDays(day, 1) + "T00:00" : day + "T" + clock(minutes);
  }

  function block(kind, from, to, text, day) {
    var link = kind === "free" && root.dataset.bookUrl;
    var el = document.createElement(link ? "a" : "div");
    el.className = "slot " + kind;
    el.style.top = (from / 1440 * 100) + "%";
    el.style.height = Math.max((to - from) / 1440 * 100, 0.4) + "%";
    if (link) {
      el.dataset.start = localText(day, from);
      el.dataset.end = localText(day, to);
      el.href = root.dataset.bookUrl + "?start=" + encodeURIComponent(el.dataset.start) +
        "&end=" + encodeURIComponent(el.dataset.end);
    } else {
      el.setAttribute("role", "note");
    }
    el.setAttribute("aria-label", text);
    el.title = text;
    return el;
  }

  function draw(data) {
    grid.textContent = "";
    var hours = document.createElement("div");
    hours.className = "week-hours";
    hours.setAttribute("aria-hidden", "true");
    for (var h = 0; h <= 24; h += 3) {
      var tick = document.createElement("span");
      tick.style.top = (h / 24 * 100) + "%";
      tick.textContent = (h < 10 ? "0" : "") + h + ":00";
      hours.appendChild(tick);
    }
    grid.appendChild(hours);
    for (var d = 0; d < 7; d++) {
      var day = addDays(weekStart, d);
      var column = document.createElement("div");
      column.className = "week-day";
      column.setAttribute("role", "cell");
      var head = document.createElement("div");
      head.className = "week-day-head";
      head.textContent = (weekdays[d] || "") + " " + day.slice(5);
      var body = document.createElement("div");
      body.className = "week-day-body";
      [["free", data.free || []], ["busy", data.busy || []]].forEach(function (pair) {
        pair[1].forEach(function (item) {
          var from = Math.max(0, localMinutes(item.start, day));
          var to = Math.min(1440, localMinutes(item.end, day));
          if (to <= from) return;
          var kind = pair[0];
          if (kind === "busy" && item.kind === "blackout") kind = "blackout";
          var word = root.dataset["label" + kind.charAt(0).toUpperCase() + kind.slice(1)] || kind;
          var text = word + " " + clock(from) + "–" + clock(to);
          // Free units matter only where more than one can be booked at once.
          if (item.units && pair[0] === "free" && capacity > 1) text += " (" + item.units + ")";
          body.appendChild(block(kind, from, to, text, day));
        });
      });
      column.appendChild(head);
      column.appendChild(body);
      grid.appendChild(column);
    }
  }

  function load() {
    var end = addDays(weekStart, 7);
    label.textContent = weekStart + " – " + addDays(weekStart, 6);
    status.textContent = root.dataset.labelLoading || "";
    var url = root.dataset.url + "?from=" + encodeURIComponent(weekStart + "T00:00:00" + offset) +
      "&to=" + encodeURIComponent(end + "T00:00:00" + offset);
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (data) { draw(data); status.textContent = ""; })
      .catch(function () {
        draw({ free: [], busy: [] });
        status.textContent = root.dataset.labelUnavailable || "";
        root.classList.add("unavailable");
      });
  }

  root.querySelectorAll("[data-week-step]").forEach(function (button) {
    button.addEventListener("click", function () {
      weekStart = addDays(weekStart, parseInt(button.dataset.weekStep, 10));
      root.classList.remove("unavailable");
      load();
    });
  });
  load();
})();

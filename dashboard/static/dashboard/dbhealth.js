// The db-health table says when it could not be refreshed, instead of showing an old
// "Checked" time as if it were current. htmx keeps polling; the next answer that
// arrives replaces the table and with it the stale marker.
(function () {
  "use strict";

  // The server answers a poll within the probe timeout (plus a short grace for a
  // result another worker is probing); past that and this margin, it is not coming.
  var LATE_MARGIN_SECONDS = 5;
  var refreshedAt = Date.now();
  var ticker = null;

  function table() {
    return document.getElementById("dbhealth-table");
  }

  function fromTable(event) {
    var source = event.detail && event.detail.elt;
    return Boolean(source && source.closest && source.closest("#dbhealth-table"));
  }

  function lateAfterSeconds() {
    var current = table();
    var timeout = current ? parseFloat(current.dataset.timeoutSeconds) : NaN;
    return (isNaN(timeout) ? 2 : timeout) + LATE_MARGIN_SECONDS;
  }

  function age(seconds) {
    return seconds < 120 ? seconds + " s" : Math.floor(seconds / 60) + " min";
  }

  function showAge() {
    var current = table();
    var shown = current && current.querySelector("[data-stale-age]");
    if (shown) {
      shown.textContent = age(Math.round((Date.now() - refreshedAt) / 1000));
    }
  }

  function markStale(reason) {
    var current = table();
    var note = current && current.querySelector("[data-stale-note]");
    if (!note) {
      return;
    }
    current.classList.add("dbhealth-stale");
    note.querySelector("[data-stale-reason]").textContent = reason;
    showAge();
    note.hidden = false;
    if (ticker === null) {
      ticker = window.setInterval(showAge, 1000);
    }
  }

  document.addEventListener("htmx:load", function (event) {
    var loaded = event.target;
    if (loaded.id === "dbhealth-table" || (loaded.querySelector && loaded.querySelector("#dbhealth-table"))) {
      refreshedAt = Date.now();
      window.clearInterval(ticker);
      ticker = null;
    }
  });

  document.addEventListener("htmx:configRequest", function (event) {
    if (fromTable(event)) {
      event.detail.timeout = lateAfterSeconds() * 1000;
    }
  });

  document.addEventListener("htmx:sendError", function (event) {
    if (fromTable(event)) {
      markStale("the server did not answer");
    }
  });

  document.addEventListener("htmx:timeout", function (event) {
    if (fromTable(event)) {
      markStale("the server did not answer within " + lateAfterSeconds() + " s");
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    if (fromTable(event)) {
      markStale("the server answered HTTP " + event.detail.xhr.status);
    }
  });
})();

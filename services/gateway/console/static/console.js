// Fluxo console: behaviour shared by every page.
//
// - The API key: kept in this tab's sessionStorage (gone when the tab closes)
//   and sent as X-API-Key with every htmx request to this origin, never to
//   another. EventSource (htmx's SSE extension) cannot send headers, so SSE
//   endpoints get no key.
// - Charts: an element with data-line-chart='<the chart as JSON>' is drawn
//   with uPlot when it appears, on load or after an htmx swap.
// - Uploads show a progress bar; model downloads carry the key; rows new to a
//   live table since its last refresh are marked.
//
// window.Fluxo exposes the same helpers to page-specific code.
(function () {
  "use strict";

  var KEY_STORAGE = "fluxo.apiKey";
  var KEY_HEADER = "X-API-Key";

  // --- API key -------------------------------------------------------------

  var apiKey = {
    get: function () {
      try {
        return window.sessionStorage.getItem(KEY_STORAGE) || "";
      } catch (err) { // storage disabled: behave as if no key was given
        return "";
      }
    },
    set: function (value) {
      window.sessionStorage.setItem(KEY_STORAGE, value);
    },
    clear: function () {
      window.sessionStorage.removeItem(KEY_STORAGE);
    },
  };

  function sameOrigin(url) {
    return new URL(url, window.location.href).origin === window.location.origin;
  }

  function showKeyState(state) {
    document.querySelectorAll("[data-api-key-state]").forEach(function (el) {
      el.dataset.state = state;
      el.textContent = { set: "key set", unset: "no key", needed: "key needed" }[state];
    });
  }

  function refreshKeyState() {
    showKeyState(apiKey.get() ? "set" : "unset");
  }

  function bindKeyForms() {
    document.querySelectorAll("[data-api-key-form]").forEach(function (form) {
      var input = form.querySelector("input");
      form.addEventListener("submit", function (event) {
        event.preventDefault(); // the key stays in the browser, it is never posted
        var value = input.value.trim();
        if (value) {
          apiKey.set(value);
        } else {
          apiKey.clear();
        }
        input.value = "";
        refreshKeyState();
      });
      var forget = form.querySelector("[data-api-key-forget]");
      if (forget) {
        forget.addEventListener("click", function () {
          apiKey.clear();
          input.value = "";
          refreshKeyState();
        });
      }
    });
    refreshKeyState();
  }

  function askForKey() {
    showKeyState("needed");
    var input = document.querySelector("[data-api-key-form] input");
    if (input) {
      input.focus();
    }
  }

  // fetch() with the API key, for page code that does not go through htmx.
  function apiFetch(url, init) {
    var options = Object.assign({}, init || {});
    var headers = new Headers(options.headers || {});
    var key = apiKey.get();
    if (key && sameOrigin(url)) {
      headers.set(KEY_HEADER, key);
    }
    options.headers = headers;
    return window.fetch(url, options).then(function (response) {
      if (response.status === 401) {
        askForKey();
      }
      return response;
    });
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var key = apiKey.get();
    if (key && sameOrigin(event.detail.path)) {
      event.detail.headers[KEY_HEADER] = key;
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    if (event.detail.xhr && event.detail.xhr.status === 401) {
      askForKey();
    }
  });

  // The console swaps refusals in (see htmx-config in base.html), so a 401
  // is no htmx error: ask for the key after any request that got one.
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.xhr && event.detail.xhr.status === 401) {
      askForKey();
    }
  });

  // Downloads that may need the key (model artifacts): fetched with it, then
  // saved under the name the gateway gives.
  function filenameOf(response, fallback) {
    var disposition = response.headers.get("Content-Disposition") || "";
    var match = /filename="([^"]+)"/.exec(disposition);
    return match ? match[1] : fallback;
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-download]") : null;
    if (!link || !sameOrigin(link.href)) {
      return;
    }
    event.preventDefault();
    apiFetch(link.href).then(function (response) {
      if (!response.ok) {
        link.dataset.downloadState = "refused " + response.status;
        return null;
      }
      return response.blob().then(function (blob) {
        var url = URL.createObjectURL(blob);
        var save = document.createElement("a");
        save.href = url;
        save.download = filenameOf(response, "model.joblib");
        document.body.appendChild(save);
        save.click();
        save.remove();
        window.setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
        link.dataset.downloadState = "saved";
      });
    });
  });

  // --- Uploads: a progress bar fed by the browser's upload progress ----------

  function progressParts(form) {
    return {
      bar: form.querySelector("[data-upload-progress]"),
      text: form.querySelector("[data-upload-percent]"),
    };
  }

  function showProgress(form, fraction) {
    var parts = progressParts(form);
    if (!parts.bar) {
      return;
    }
    parts.bar.hidden = false;
    parts.bar.value = Math.round(fraction * 100);
    if (parts.text) {
      parts.text.textContent = fraction >= 1 ? "sent; validating and publishing…" : Math.round(fraction * 100) + " %";
    }
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt.matches && event.detail.elt.matches("[data-upload-form]")) {
      showProgress(event.detail.elt, 0);
    }
  });

  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = event.target.closest ? event.target.closest("[data-upload-form]") : null;
    if (form && event.detail.lengthComputable && event.detail.total > 0) {
      showProgress(form, event.detail.loaded / event.detail.total);
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form.matches && form.matches("[data-upload-form]")) {
      showProgress(form, 1);
      var text = progressParts(form).text;
      if (text) {
        text.textContent = event.detail.successful ? "done" : "refused";
      }
    }
  });

  // --- Live tables: rows that arrived since the last refresh are marked ------

  var seenEvents = null; // event ids shown so far on this page

  function markFreshRows(root) {
    var rows = root.querySelectorAll("tr[data-event-id]");
    if (seenEvents === null) {
      seenEvents = new Set();
      rows.forEach(function (row) { seenEvents.add(row.dataset.eventId); });
      return;
    }
    rows.forEach(function (row) {
      if (!seenEvents.has(row.dataset.eventId)) {
        row.classList.add("fresh");
        seenEvents.add(row.dataset.eventId);
      }
    });
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.querySelector("[data-live-table]")) {
      markFreshRows(event.detail.target);
    }
  });

  // A <select data-autosubmit> submits its (GET) form when changed.
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select.matches && select.matches("select[data-autosubmit]") && select.form) {
      select.form.submit();
    }
  });

  // --- Charts --------------------------------------------------------------

  var charts = new WeakMap(); // element -> uPlot instance

  function palette() {
    var style = window.getComputedStyle(document.documentElement);
    var colours = [];
    for (var i = 1; i <= 6; i++) {
      colours.push(style.getPropertyValue("--chart-" + i).trim() || "#1f5fbf");
    }
    return colours;
  }

  function chartWidth(element) {
    return Math.max(element.clientWidth, 200);
  }

  // Labelled vertical lines (model swaps) at data.markers' x positions.
  function drawMarkers(markers, style) {
    return function (plot) {
      if (!markers.length) {
        return;
      }
      var ctx = plot.ctx;
      var ratio = window.devicePixelRatio || 1;
      ctx.save();
      ctx.strokeStyle = style.getPropertyValue("--marker").trim() || "#5b6473";
      ctx.fillStyle = ctx.strokeStyle;
      ctx.lineWidth = ratio;
      ctx.setLineDash([4 * ratio, 4 * ratio]);
      ctx.font = 11 * ratio + "px sans-serif";
      markers.forEach(function (marker) {
        var x = Math.round(plot.valToPos(marker.x, "x", true));
        if (x < plot.bbox.left || x > plot.bbox.left + plot.bbox.width) {
          return;
        }
        ctx.beginPath();
        ctx.moveTo(x, plot.bbox.top);
        ctx.lineTo(x, plot.bbox.top + plot.bbox.height);
        ctx.stroke();
        ctx.fillText(marker.label, x + 3 * ratio, plot.bbox.top + 12 * ratio);
      });
      ctx.restore();
    };
  }

  // data: {"x": [...], "series": [{"label": "...", "values": [...]}], "time": true,
  // "markers": [{"x": ..., "label": "..."}]} as built by
  // services.gateway.console.charts.line_chart. Returns the uPlot.
  function drawLineChart(element, data) {
    var existing = charts.get(element);
    if (existing) {
      existing.destroy();
    }
    var style = window.getComputedStyle(document.documentElement);
    var colours = palette();
    var options = {
      width: chartWidth(element),
      height: Number(element.dataset.height) || 240,
      scales: { x: { time: data.time !== false } },
      series: [{}].concat(
        data.series.map(function (series, index) {
          return {
            label: series.label,
            stroke: colours[index % colours.length],
            width: 2,
          };
        })
      ),
      axes: [{}, { size: 56 }],
      legend: { live: true },
      hooks: { draw: [drawMarkers(data.markers || [], style)] },
    };
    var columns = [data.x].concat(
      data.series.map(function (series) {
        return series.values;
      })
    );
    var plot = new window.uPlot(options, columns, element);
    charts.set(element, plot);
    return plot;
  }

  function chartFor(element) {
    return charts.get(element) || null;
  }

  function chartElements(root) {
    var scope = root || document;
    var found = Array.prototype.slice.call(scope.querySelectorAll("[data-line-chart]"));
    if (scope.matches && scope.matches("[data-line-chart]")) {
      found.push(scope);
    }
    return found;
  }

  // Draws every chart under root that is not drawn yet; returns their elements.
  function drawCharts(root) {
    var found = chartElements(root);
    found.forEach(function (element) {
      if (charts.has(element)) {
        return;
      }
      drawLineChart(element, JSON.parse(element.dataset.lineChart));
    });
    return found;
  }

  // One observer for every chart: follow the width of the column they sit in.
  var resizer = new ResizeObserver(function (entries) {
    entries.forEach(function (entry) {
      var plot = charts.get(entry.target);
      if (plot && chartWidth(entry.target) !== plot.width) {
        plot.setSize({ width: chartWidth(entry.target), height: plot.height });
      }
    });
  });

  function showCharts(root) {
    drawCharts(root).forEach(function (element) {
      resizer.observe(element);
    });
  }

  // --- Start ---------------------------------------------------------------

  function ready(callback) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", callback);
    } else {
      callback();
    }
  }

  ready(function () {
    bindKeyForms();
    showCharts(document);
    markFreshRows(document); // the rows the page came with are the baseline
  });

  // New content from an htmx swap may bring charts of its own.
  document.addEventListener("htmx:load", function (event) {
    showCharts(event.detail.elt);
  });

  window.Fluxo = {
    apiKey: apiKey,
    apiFetch: apiFetch,
    drawLineChart: drawLineChart,
    drawCharts: drawCharts,
    chartFor: chartFor,
  };
})();

// membench leaderboard: tabs, sorting and filtering, no framework. Without it every panel
// and every row stays visible.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function sortValue(row, index) {
    var cell = row.cells[index];
    var raw = cell ? cell.getAttribute("data-sort") : null;
    if (raw === null) return cell ? cell.textContent.trim().toLowerCase() : "";
    var n = Number(raw);
    return raw !== "" && !isNaN(n) ? n : raw.toLowerCase();
  }

  function compare(a, b) {
    if (typeof a === "number" && typeof b === "number") return a - b;
    if (typeof a === "number") return -1;
    if (typeof b === "number") return 1;
    return String(a).localeCompare(String(b));
  }

  // Sorting reorders the ranked rows among themselves, and the reported-only rows (values a
  // paper reported that nothing here reproduces) among themselves, always after the ranked ones.
  function makeSortable(table) {
    var bodies = table.querySelectorAll("tbody.ranked, tbody.reported-only");
    if (!bodies.length) return;
    var headers = table.querySelectorAll("thead th");
    headers.forEach(function (th, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = th.textContent;
      button.title = "sort by " + th.textContent;
      th.textContent = "";
      th.appendChild(button);
      button.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        bodies.forEach(function (body) {
          var rows = Array.prototype.slice.call(body.rows);
          rows.sort(function (a, b) {
            var c = compare(sortValue(a, index), sortValue(b, index));
            return ascending ? c : -c;
          });
          rows.forEach(function (r) { body.appendChild(r); });
        });
      });
    });
  }

  function makeFilter(input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    if (!table) return;
    var count = document.getElementById(table.id + "-count");
    var rows = table.querySelectorAll("tbody.ranked tr, tbody.reported-only tr");
    function apply() {
      var q = input.value.trim().toLowerCase();
      var shown = 0;
      rows.forEach(function (r) {
        var ok = !q || r.textContent.toLowerCase().indexOf(q) !== -1;
        r.hidden = !ok;
        if (ok) shown += 1;
      });
      if (count) count.textContent = shown + " of " + rows.length + " rows";
    }
    input.addEventListener("input", apply);
    apply();
  }

  // Tabs: a nav.tabs[data-tab-group] holds buttons whose data-tab names a .tab-panel of the
  // same group; one panel per group is shown. The panel holding the URL's #target wins (so
  // permalinks to rows in another track or table work), else the first.
  function hashTarget() {
    if (!location.hash) return null;
    try { return document.getElementById(decodeURIComponent(location.hash.slice(1))); } catch (e) { return null; }
  }

  function makeTabs(nav) {
    var group = nav.getAttribute("data-tab-group");
    var buttons = Array.prototype.slice.call(nav.querySelectorAll("button[data-tab]"));
    var panels = Array.prototype.slice.call(
      document.querySelectorAll('.tab-panel[data-tab-group="' + group + '"]'));
    if (!panels.length) return null;
    function show(id) {
      panels.forEach(function (p) { p.hidden = p.id !== id; });
      buttons.forEach(function (b) {
        b.setAttribute("aria-selected", b.getAttribute("data-tab") === id ? "true" : "false");
      });
    }
    buttons.forEach(function (b) {
      b.addEventListener("click", function () {
        show(b.getAttribute("data-tab"));
        if (history.replaceState) history.replaceState(null, "", "#" + b.getAttribute("data-tab"));
      });
    });
    function select() {
      var target = hashTarget();
      var chosen = panels[0].id;
      panels.forEach(function (p) { if (target && (p === target || p.contains(target))) chosen = p.id; });
      show(chosen);
      return target;
    }
    return select;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var selectors = [];
    document.querySelectorAll("nav.tabs[data-tab-group]").forEach(function (nav) {
      var select = makeTabs(nav);
      if (select) selectors.push(select);
    });
    function reveal() {
      var target = null;
      selectors.forEach(function (select) { target = select() || target; });
      if (target) target.scrollIntoView();
    }
    selectors.forEach(function (select) { select(); });
    window.addEventListener("hashchange", reveal);
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    document.querySelectorAll("input.filter").forEach(makeFilter);
  });
})();

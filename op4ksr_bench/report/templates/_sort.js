// Sortable leaderboard tables: click (or Enter on) a header. The first click puts the better values first
// (direction from the metric's higher_is_better, in data-higher); the next click reverses. Missing values stay last,
// and on numeric columns rows not on the ranked image set (data-ranked="0") stay after the ranked ones. A two-sided
// metric (data-ideal) sorts by the distance to its ideal value.
(function () {
  function sortBy(table, header, index) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var state = header.getAttribute("aria-sort");
    var descending = state === "descending" ? false : state === "ascending" ? true : header.dataset.higher === "1";
    Array.prototype.forEach.call(header.parentNode.cells, function (cell) { cell.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var numeric = header.dataset.sort === "num";
    var ideal = header.dataset.ideal === undefined ? null : parseFloat(header.dataset.ideal);
    function key(row) {
      var cell = row.cells[index];
      return cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
    }
    rows.sort(function (a, b) {
      if (numeric && a.dataset.ranked !== b.dataset.ranked) { return b.dataset.ranked - a.dataset.ranked; }
      var x = key(a), y = key(b);
      if (numeric) {
        if (x === "" || y === "") { return (x === "") - (y === ""); }
        var fx = parseFloat(x), fy = parseFloat(y);
        if (ideal !== null) { fx = Math.abs(fx - ideal); fy = Math.abs(fy - ideal); }
        var difference = fx - fy;
        return descending ? -difference : difference;
      }
      var order = x.localeCompare(y);
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  document.querySelectorAll("table.board").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, index) {
      if (!header.dataset.sort) { return; }
      header.tabIndex = 0;
      header.addEventListener("click", function () { sortBy(table, header, index); });
      header.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(table, header, index); }
      });
    });
  });
})();

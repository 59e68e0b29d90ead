/* ndvicube's viewer: composites as tile layers, fields and points, their series on a click.
   Plain script (no module, no fetch): opens from file://. Text from users' files (ids) is
   written with textContent only. */
(function () {
  "use strict";
  var V = { shards: {}, waiting: {}, started: performance.now() };
  window.ndvicubeViewer = V;
  var $ = function (id) { return document.getElementById(id); };

  V.setup = function (setup) { V.conf = setup; };
  V.fields = function (packed) { V.geojson = unpackOutlines(packed); };
  V.series = function (kind, shard, packed) {
    var key = kind + "_" + shard, entries = unpackSeries(packed);
    V.shards[key] = entries;
    (V.waiting[key] || []).forEach(function (f) { f(entries); });
    delete V.waiting[key];
  };

  /* The outlines as data/fields.js packs them (ndvicube/viewer/data.py, outlines): whole
     millionths of a degree, each the step from the coordinate before on its axis, rings
     without their closing vertex. */
  function unpackOutlines(p) {
    var x = 0, y = 0, k = 0, r = 0, q = 0, features = [];
    for (var i = 0; i < p.ids.length; i++) {
      var polygons = [], parts = p.parts ? p.parts[i] : 1;
      for (var j = 0; j < parts; j++, q++) {
        var rings = [];
        for (var m = 0; m < p.polygons[q]; m++, r++) {
          var ring = [];
          for (var n = 0; n < p.rings[r]; n++, k += 2) {
            x += p.coords[k]; y += p.coords[k + 1];
            ring.push([x / p.scale, y / p.scale]);
          }
          ring.push(ring[0]);
          rings.push(ring);
        }
        polygons.push(rings);
      }
      features.push({ type: "Feature", properties: { id: p.ids[i], shard: Math.floor(i / p.shard) },
        geometry: p.multi ? { type: "MultiPolygon", coordinates: polygons }
          : { type: "Polygon", coordinates: polygons[0] } });
    }
    return { type: "FeatureCollection", features: features };
  }

  /* A series shard as data/series/*.js packs it (data.py, write_series_shards), as one entry
     per id: {raw_t, raw: {INDEX: values}, smooth_t, smooth, seasons}. A value is its whole
     number over the column's scale (the same float as the table's text), or its text, or as
     written (a column without a scale). */
  function unpackSeries(p) {
    var entries = Object.create(null);  /* an id such as "__proto__" is a key like another */
    p.ids.forEach(function (id, i) {
      entries[id] = {};
      if (p.seasons[i]) entries[id].seasons = p.seasons[i];
    });
    ["raw", "smooth"].forEach(function (name) {
      var part = p[name], at = 0;
      p.ids.forEach(function (id, i) {
        if (part.time[i] < 0) return;
        var days = part.times[part.time[i]], e = entries[id];
        e[name + "_t"] = days;
        e[name] = {};
        Object.keys(part.columns).forEach(function (index) {
          var c = part.columns[index], v = c.values.slice(at, at + days.length);
          e[name][index] = c.scale === null ? v : v.map(function (w) {
            return w === null ? null : typeof w === "string" ? parseFloat(w) : w / c.scale;
          });
        });
        at += days.length;
      });
    });
    return entries;
  }

  function loadShard(kind, shard, done) {
    var key = kind + "_" + shard;
    if (V.shards[key]) { done(V.shards[key]); return; }
    if (V.waiting[key]) { V.waiting[key].push(done); return; }
    V.waiting[key] = [done];
    var s = document.createElement("script");
    s.src = "data/series/" + kind + "_" + shard + ".js";
    document.body.appendChild(s);
  }

  /* Tiles the pyramid holds (a sparse field set has none over its empty chunks): asked for
     only where they exist, so no missing file is requested. */
  var Tiles = L.TileLayer.extend({
    createTile: function (coords, done) {
      if (!this.options.present[coords.z + "/" + coords.x + "/" + coords.y]) {
        var empty = document.createElement("div");
        L.Util.requestAnimFrame(L.bind(done, this, null, empty));
        return empty;
      }
      return L.TileLayer.prototype.createTile.call(this, coords, done);
    }
  });

  function tileSet(n) {
    V.sets = V.sets || {};
    if (!V.sets[n]) {
      var present = {};
      V.conf.tile_sets[n].forEach(function (k) { present[k] = true; });
      V.sets[n] = present;
    }
    return V.sets[n];
  }

  function tileLayer(index, period, pane) {
    var layer = V.conf.layers[index][period];
    return new Tiles("tiles/" + index + "/" + layer.tiles + "/{z}/{x}/{y}.png", {
      pane: pane, minNativeZoom: V.conf.zoom[0], maxNativeZoom: V.conf.zoom[1], maxZoom: 20,
      bounds: L.latLngBounds([[V.conf.bounds[1], V.conf.bounds[0]], [V.conf.bounds[3], V.conf.bounds[2]]]),
      opacity: $("opacity").value / 100, className: "ndvicube-tiles", present: tileSet(layer.set)
    });
  }

  function showLayer() {
    var index = $("index").value, p = +$("period").value;
    var periods = V.conf.layers[index] || [];
    if (V.layer) V.map.removeLayer(V.layer);
    if (!periods.length) return;
    $("period-label").textContent = periods[p].start;
    V.layerLoaded = false;
    V.layer = tileLayer(index, p, "maps").addTo(V.map);
    V.layer.on("load", function () { V.layerLoaded = V.tilesLoaded = true; markReady(); });
    showCompare();
  }

  function showCompare() {
    if (V.compare) { V.map.removeLayer(V.compare); V.compare = null; }
    var on = $("compare").checked, index = $("index").value;
    V.divider.style.display = V.swipe.style.display = on ? "block" : "none";
    var periods = V.conf.layers[index] || [];
    if (!periods.length) return;
    var q = +$("compare-period").value;
    $("compare-label").textContent = periods[q].start;
    V.compareLoaded = false;
    if (on) {
      V.compare = tileLayer(index, q, "compare").addTo(V.map);
      V.compare.on("load", function () { V.compareLoaded = true; });
    }
    clipCompare();
  }

  function clipCompare() {
    var pane = V.map.getPane("compare");
    if (!$("compare").checked) { pane.style.clip = ""; return; }
    var ratio = V.swipe.value / 1000, size = V.map.getSize();
    var nw = V.map.containerPointToLayerPoint([0, 0]);
    var se = V.map.containerPointToLayerPoint(size);
    var x = nw.x + size.x * ratio;
    pane.style.clip = "rect(" + [nw.y, se.x, se.y, x].join("px,") + "px)";
    V.divider.style.left = (size.x * ratio) + "px";
  }

  function legend() {
    var lg = V.conf.legend;
    $("legend-bar").style.background = "linear-gradient(to right," + lg.colours.join(",") + ")";
    $("legend-min").textContent = lg.range[0];
    $("legend-max").textContent = lg.range[1];
  }

  function markReady() {
    if (V.ready || !V.tilesLoaded || !V.outlinesDrawn) return;
    V.ready = true;
    V.readyMs = performance.now() - V.started;
  }

  function select(kind, id, entry) {
    V.selected = { kind: kind, id: id };
    var t0 = performance.now();
    loadShard(kind, entry.shard, function (entries) {
      drawChart(kind, id, entries[id] || {});
      V.lastChartMs = performance.now() - t0;
    });
    if (kind === "fields" && V.byId[id]) {
      V.outlines.resetStyle();
      V.byId[id].setStyle({ color: "#0033ff", weight: 3 });
    }
  }

  function seconds(dates) {  /* ISO dates, or days since 1970-01-01 */
    return dates.map(function (d) {
      return typeof d === "number" ? d * 86400 : Date.parse(d + "T00:00:00Z") / 1000;
    });
  }

  function drawChart(kind, id, entry) {
    var index = $("index").value, lower = index;
    var rawT = entry.raw_t || [], smT = entry.smooth_t || [];
    var raw = (entry.raw || {})[lower] || [], smooth = (entry.smooth || {})[lower] || [];
    var seasons = (entry.seasons || {})[index] || [];
    $("chart-title").textContent = (kind === "fields" ? "Field " : "Point ") + id + ": " + index;
    var iso = function (t) { return new Date(t * 1000).toISOString().slice(0, 10); };
    V.chart = { kind: kind, id: id, index: index, raw_t: seconds(rawT).map(iso), raw: raw,
      smooth_t: seconds(smT).map(iso), smooth: smooth, seasons: seasons };  /* as drawn */
    var xs = {}, i;
    seconds(rawT).forEach(function (t, k) { (xs[t] = xs[t] || {}).raw = raw[k]; });
    seconds(smT).forEach(function (t, k) { (xs[t] = xs[t] || {}).smooth = smooth[k]; });
    var times = Object.keys(xs).map(Number).sort(function (a, b) { return a - b; });
    var data = [times, times.map(function (t) { return xs[t].raw == null ? null : xs[t].raw; }),
      times.map(function (t) { return xs[t].smooth == null ? null : xs[t].smooth; })];
    var marks = [];
    seasons.forEach(function (s) {
      for (i = 0; i < 3; i++) if (s[i]) marks.push([seconds([s[i]])[0], ["SOS", "POS", "EOS"][i]]);
    });
    if (V.plot) V.plot.destroy();
    var el = $("chart");
    V.plot = new uPlot({
      width: el.clientWidth || 350, height: 220,
      scales: { y: { range: [V.conf.legend.range[0], V.conf.legend.range[1]] } },
      series: [{}, { label: "clear observations", stroke: "#2b7a2b", width: 0,
        points: { show: true, size: 5, fill: "#2b7a2b" } },
        { label: "smoothed", stroke: "#1a4fa0", width: 2, spanGaps: true, points: { show: false } }],
      hooks: { draw: [function (u) {
        var ctx = u.ctx;
        ctx.save(); ctx.strokeStyle = "#b05000"; ctx.fillStyle = "#b05000";
        ctx.font = 10 * devicePixelRatio + "px sans-serif";
        marks.forEach(function (m) {
          var x = u.valToPos(m[0], "x", true);
          ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height);
          ctx.stroke();
          ctx.fillText(m[1], x + 2, u.bbox.top + (12 + 11 * (m[1] === "POS")) * devicePixelRatio);
        });
        ctx.restore();
      }] }
    }, data, el);
  }

  function search(text) {
    var list = $("matches"), found = [];
    list.textContent = "";
    var q = text.trim().toLowerCase();
    if (!q) return;
    V.entries.forEach(function (e) {
      if (found.length < 30 && e.id.toLowerCase().indexOf(q) >= 0) found.push(e);
    });
    found.forEach(function (e) {
      var li = document.createElement("li");
      li.textContent = (e.kind === "fields" ? "field " : "point ") + e.id;
      li.addEventListener("click", function () { go(e); });
      list.appendChild(li);
    });
    var exact = V.entries.filter(function (e) { return e.id === text.trim(); });
    return exact[0] || (found.length === 1 ? found[0] : null);
  }

  function go(e) {
    var near = V.conf.zoom[1] + 2;
    if (e.kind === "fields" && V.byId[e.id]) V.map.fitBounds(V.byId[e.id].getBounds(), { maxZoom: near });
    else V.map.setView([e.lat, e.lon], Math.max(V.map.getZoom(), near));
    select(e.kind, e.id, e);
  }

  V.find = function (text) { var e = search(text); if (e) go(e); return !!e; };

  V.start = function () {
    var c = V.conf;
    $("title").textContent = "Area " + c.area;
    $("what").textContent = c.what;
    var b = L.latLngBounds([[c.bounds[1], c.bounds[0]], [c.bounds[3], c.bounds[2]]]);
    V.map = L.map("map", { zoomSnap: 1, maxZoom: 20, fadeAnimation: false });
    V.map.createPane("maps").style.zIndex = 300;
    V.map.createPane("compare").style.zIndex = 310;
    V.map.fitBounds(b);
    V.osm = L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
      maxZoom: 19, attribution: "&copy; OpenStreetMap contributors" });
    $("basemap").addEventListener("change", function () {
      if (this.checked) V.osm.addTo(V.map); else V.map.removeLayer(V.osm);
    });
    var renderer = L.canvas({ padding: 0.5 });
    L.rectangle(b, { renderer: renderer, color: "#333", weight: 1, fill: false, dashArray: "4 4",
      interactive: false }).addTo(V.map);
    c.indices.forEach(function (index) {
      var o = document.createElement("option"); o.value = o.textContent = index; $("index").appendChild(o);
    });
    var n = (c.layers[c.indices[0]] || []).length;
    $("period").max = $("compare-period").max = Math.max(n - 1, 0);
    $("compare-period").value = n > 1 ? 1 : 0;
    V.divider = L.DomUtil.create("div", "swipe-divider", V.map.getContainer());
    V.swipe = L.DomUtil.create("input", "swipe-range", V.map.getContainer());
    V.swipe.type = "range"; V.swipe.min = 0; V.swipe.max = 1000; V.swipe.value = 500;
    L.DomEvent.disableClickPropagation(V.swipe);
    L.DomEvent.on(V.swipe, "input", clipCompare);
    V.map.on("move zoom resize", clipCompare);
    ["index", "period"].forEach(function (id) { $(id).addEventListener("input", showLayer); });
    ["compare", "compare-period"].forEach(function (id) { $(id).addEventListener("input", showCompare); });
    $("compare").addEventListener("change", showCompare);
    $("opacity").addEventListener("input", function () {
      var o = this.value / 100; if (V.layer) V.layer.setOpacity(o); if (V.compare) V.compare.setOpacity(o);
    });
    V.entries = []; V.byId = {};
    if (V.geojson) {
      V.outlines = L.geoJSON(V.geojson, {
        renderer: renderer, style: { color: "#111", weight: 1, fill: true, fillOpacity: 0 },
        onEachFeature: function (f, layer) {
          var p = f.properties;
          V.byId[p.id] = layer;
          V.entries.push({ kind: "fields", id: p.id, shard: p.shard });
          layer.on("click", function () { select("fields", p.id, p); });
        }
      }).addTo(V.map);
    }
    V.points = L.layerGroup().addTo(V.map);
    c.points.forEach(function (p) {
      var e = { kind: "points", id: p.id, shard: p.shard, lon: p.lon, lat: p.lat };
      V.entries.push(e);
      L.circleMarker([p.lat, p.lon], { renderer: renderer, radius: 5, color: "#000", weight: 1,
        fillColor: "#fff", fillOpacity: 1 }).on("click", function () {
          if (p.shard != null) select("points", p.id, e);
        }).addTo(V.points);
    });
    var rej = Object.keys(c.rejected);
    if (rej.length) {
      var total = rej.reduce(function (s, k) { return s + c.rejected[k]; }, 0);
      $("rejected").textContent = total + " field(s) rejected, not drawn: " +
        rej.map(function (k) { return k + " " + c.rejected[k]; }).join(", ");
    }
    $("search-form").addEventListener("submit", function (ev) { ev.preventDefault(); V.find($("search").value); });
    $("search").addEventListener("input", function () { search(this.value); });
    legend();
    V.outlinesDrawn = true;
    showLayer();
    if (!V.layer) { V.tilesLoaded = true; markReady(); }
  };
})();

"""The viewer: a folder per area with an ``index.html`` that opens from ``file://`` (no server,
no network) and shows the composites as map layers, the fields and points, and their series
on a click (issue 34). Written by the quick-look job, by :func:`.page.build_viewer`.

Modules: ``tiles`` (the Web-Mercator PNG pyramid of the composites, in the figures' colour map,
cached by a digest of each composite's values), ``png`` (its tiles' encoder: palette PNGs
under the Paeth filter), ``data`` (the outlines, and the series in
shards of ``<script>`` files loaded when asked for, packed), ``page`` (the folder and its
``index.html`` from ``template.html``; ``results/index.html``); ``static/`` holds the
vendored Leaflet and uPlot with their licences and ``VERSIONS``, and the page's own script.
"""

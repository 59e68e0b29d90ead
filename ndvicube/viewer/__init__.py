"""The viewer: a folder per area with an ``index.html`` that opens from ``file://`` (no server,
no network) and shows the composites as Web-Mercator tiles, the fields and points, and their
series on a click (issue 34). :func:`ndvicube.viewer.page.build_viewer` writes it."""

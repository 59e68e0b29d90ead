"""Stage 4, time series: the cube's values at points and in polygons, smoothed, and seasons.

* :mod:`ndvicube.timeseries.points` - each index at the pixel of each
  :class:`~ndvicube.geo.Point`, with the clear share of its 3 x 3 neighbourhood.
* :mod:`ndvicube.timeseries.polygons` - mean, median, count and clear fraction of the pixels
  in each polygon, read from the chunks the polygons touch.
* :mod:`ndvicube.timeseries.zonal` - exact zonal statistics: each polygon's cells and coverage
  fractions (exactextract, once), and coverage-weighted means, medians and counts of every
  polygon on every date in numpy.
* :mod:`ndvicube.timeseries.smoothing` - the ``smoothing`` section: the notebook's recipe,
  Savitzky-Golay or Whittaker, every series at once.
* :mod:`ndvicube.timeseries.phenology` - the ``phenology`` section: start, peak and end of
  each season.
* :mod:`ndvicube.timeseries.tables` - the CSV tables each step reads and writes.
* :mod:`ndvicube.timeseries.steps` - the table jobs' steps, file to file.
"""

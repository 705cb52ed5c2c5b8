"""Self-contained HTML reports: one per evaluation, one per night.

A report is one file a person can open from any folder or attach to a mail: every image is a
base64 data URI, the CSS is in the page, there is no script and no external URL. Everything
that comes from the data (class names, ids, text, feature names and values, reasons) is
escaped. Red means "look here": an alert, an overfitting model, a drifted night.

- :mod:`pipeline.rendering.reports.evaluation`: the evaluation report (report.html of an evaluation).
- :mod:`pipeline.rendering.reports.nightly`: the nightly report (drift and live quality over recent nights).
- :mod:`pipeline.rendering.reports.markup`: the page, CSS, tables, images and escaping both share.

Built with the standard library (html.escape and string building); the plots come from
:mod:`pipeline.rendering.plots`. Import from the modules: this package imports nothing.
"""

"""Optical flow: the ReynoldsFlow-style training-free estimator and its encodings.

* :mod:`~flow_sceneflow.optical.reynolds` — Reynolds flow (Chen & Wu 2025, arXiv 2503.04500):
  a conventional flow plus an irrotational correction from the Reynolds transport theorem;
* :mod:`~flow_sceneflow.optical.poisson` — the weighted Poisson solve behind that correction;
* :mod:`~flow_sceneflow.optical.encodings` — the HSV flow image and the ReynoldsFlow+ RGB stack;
* :mod:`~flow_sceneflow.optical.validation` — the checks every optical entry point runs.

Elsewhere in the package, by the plugin layout: the baselines TV-L1, iterative Lucas-Kanade
(scikit-image) and Farneback (OpenCV, optional) in :mod:`~flow_sceneflow.baselines`; the data
(the real stereo pair with ground truth bundled in scikit-image, bundled images warped by known
fields, a user's own image files) in :mod:`~flow_sceneflow.data.optical`; end-point error and
outlier rate in :mod:`~flow_sceneflow.metrics`; the figure in :mod:`~flow_sceneflow.figures`;
the ``sceneflow.optical`` task in :mod:`~flow_sceneflow.tasks.optical`.

Conventions: images are 2-D float arrays in [0, 1] (H, W); a flow is an (H, W, 2) array with
``flow[..., 0] = u`` (columns, +x right) and ``flow[..., 1] = v`` (rows, +y down), defined on
the first frame: ``image0(x) ≈ image1(x + flow(x))``. NaN in a ground-truth flow marks a pixel
without ground truth.
"""

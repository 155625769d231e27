"""Optical flow: a ReynoldsFlow-style training-free estimator, its encodings, baselines, data.

* :mod:`~flow_sceneflow.optical.reynolds` — Reynolds flow (Chen & Wu 2025, arXiv 2503.04500):
  a conventional flow plus an irrotational correction from the Reynolds transport theorem;
* :mod:`~flow_sceneflow.optical.poisson` — the weighted Poisson solve behind that correction;
* :mod:`~flow_sceneflow.optical.encodings` — the HSV flow image and the ReynoldsFlow+ RGB stack;
* :mod:`~flow_sceneflow.optical.baselines` — TV-L1 and iterative Lucas-Kanade (scikit-image),
  Farneback (OpenCV, optional);
* :mod:`~flow_sceneflow.optical.data` — the real stereo pair with ground truth bundled in
  scikit-image, bundled images warped by known fields, and a user's own image files;
* :mod:`~flow_sceneflow.optical.metrics` — end-point error and outlier rate;
* :mod:`~flow_sceneflow.optical.task` — the ``sceneflow.optical`` task.

Conventions: images are 2-D float arrays in [0, 1] (H, W); a flow is an (H, W, 2) array with
``flow[..., 0] = u`` (columns, +x right) and ``flow[..., 1] = v`` (rows, +y down), defined on
the first frame: ``image0(x) ≈ image1(x + flow(x))``. NaN in a ground-truth flow marks a pixel
without ground truth.
"""

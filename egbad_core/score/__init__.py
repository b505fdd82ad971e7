"""The fourth stage: how unusual an image is.

Whole-image EGBAD (``whole``, its reference ``whole_reference``), local EGBAD for patch models with
an anomaly map per image (``local``, its memory banks ``local_reference``, the search of them
``nearest``, the pixels' local statistics ``moments``, the same-place comparison of aligned images
``same_place``, and for aligned photos in windows ``frame_place``, each photo's pose against the
frame found by ``registration``, thin straight lines on textures ``lines``), AnoGAN's latent search (``anogan``), photos larger than a window cut into windows
and their maps stitched (``tiling``), which of them a checkpoint's images go through (``method``),
what a scoring run returns (``scores``), their tensor helpers (``tensors``), how much of the images' variation the
reconstructions explain (``explained``), the metrics and thresholds (``metrics``) and the false-alarm
rate a threshold implies for good parts (``false_alarms``).

May import: ``model``, ``system`` and the shared vocabularies. Never ``data``, ``train`` or ``run``:
a scorer takes tensors and returns numbers.
"""

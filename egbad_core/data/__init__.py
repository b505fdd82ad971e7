"""The first stage: images from where the user keeps them, ready for the networks.

Sources (``sources``: the demo, an MNIST-style CSV, an MVTec-layout folder), decoding of image files
by DataLoader workers (``decoding``), folders listed and read whole or a chunk at a time
(``folders``), CSV files (``csv_files``), defect masks (``masks``), a region of interest
(``region``), the one interface to all of them
(``loading``), a first look at a folder for the automatic preset (``survey``), photos kept at their
own resolution and where they are held (``photos``) and the loaded images themselves with the
files that could not be used (``images``). Every source is decoded and resized to the model's size
once, when it is loaded; folder images are held as uint8.

May import: ``system``, ``config``, ``events``, ``errors``. Nothing here knows of networks or scores.
"""

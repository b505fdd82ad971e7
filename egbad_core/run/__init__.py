"""The fifth stage: a scoring run and what it leaves.

What a run is asked (``scoring.ScoreRequest``) and a set held in memory scored into a ``Detection``
(``scoring``, the record itself in ``detection``), a source of any size scored a chunk at a time
into a folder (``streaming``), a photo larger than the model's windows scored at its own resolution
(``photos``), a folder of such photos scored into a Detection of thumbnails the window can hold
(``photo_detection``), and the files it writes: ``scores.csv`` and ``summary.json``
(``results``), the result grid (``grid``) and the anomaly maps (``maps``); a folder watched, its
images scored as they land (``watching``), or a camera's frames (``video``); and an inspector's marks
of images good or defective, kept beside the data (``corrections``).

May import: ``score``, ``model``, ``data``, ``system`` and the shared vocabularies. Never ``train``,
``session`` or ``cli``.
"""

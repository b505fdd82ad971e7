"""The third stage: a model learned from good images.

The Trainer and its loop (``trainer``: EGBAD's three updates per batch, the refinement stage,
checkpoints along the way), its tools (``updates``, ``history``, ``shapes``), the random patches a
patch model learns from (``crops``), how well it reconstructs them (``fit``), what its score
measures against, built from the training images (``references``), the collapse watch
(``collapse``) and the automatic choice of a recipe for the data (``choice``). Training several
processes together uses ``system.distributed``.

May import: ``score`` (a checkpoint carries the reference its scores measure against), ``model``,
``data``, ``system`` and the shared vocabularies. Never ``run``, ``session`` or ``cli``.
"""

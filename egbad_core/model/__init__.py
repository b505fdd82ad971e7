"""The second stage: what a trained model is.

EGBAD's three networks (``networks``: G, E and D), their frozen scoring copy (``inference``), the
losses they train on (``losses``), the records of what their scores measure against
(``references``) and the checkpoint file that holds all of it (``checkpoints``).

May import: ``system``, ``config``, ``errors`` and torch. Never a scorer, a trainer or the data:
reading a checkpoint needs none of them.
"""

"""The sixth stage: a trained model as a file that scores without this package.

``score_module`` holds a checkpoint's whole score as one torch module, made of the scorers' own
functions; ``onnx_export`` writes it as ONNX with a JSON of what it expects, and checks the
written model against the app's scores before it says it is done.

May import: ``run``, ``score``, ``model``, ``system`` and the shared vocabularies. Never
``session`` or ``cli``.
"""

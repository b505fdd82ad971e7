"""What the machine gives the engine: the device the networks run on (``device``), the C
allocator's settings (``memory``), files written whole or not at all (``files``),
processes that work together under torchrun (``distributed``) and child processes that end with
their parent (``processes``).

May import: ``errors`` and the standard library, torch for the device. The lowest floor but one:
every stage may use it, it uses none of them.
"""

"""The topology core: numpy only, no model code.

Point clouds in, layer choices out. ``complexes`` builds the per-layer k-NN
clique complexes and their zigzag; ``zigzag`` (engines ``fast`` and the
``reference`` dionysus ones) and ``standard`` compute barcodes (``barcode``);
``images`` turns them into Effective Persistence Images; ``scoring`` gives
each layer its activity and consistency; ``selection`` picks the layers;
``search`` runs the whole chain under one :class:`SearchConfig`;
``synthetic`` makes clouds with known topology for tests and teaching.

Nothing here imports torch or transformers (a test checks it): the model side
(:mod:`topovlm.models`, :mod:`topovlm.extract`) hands this package arrays.
"""

"""dlcore: the small, tested library behind the executable deep-learning textbook.

Each module holds one concept, in the order the book introduces it:

- ``dlcore.device``  devices, seeds and the cpu/gpu size profile
- ``dlcore.data``    offline datasets, splits, loaders and opt-in hashed downloads
- ``dlcore.plot``    the book's figure style and plotting helpers
- ``dlcore.train``   a small training loop (``fit``/``evaluate``/``History``)
- ``dlcore.widgets`` interactive demos that also leave a static figure for the HTML book

Import the module you need (``from dlcore import data``); nothing heavy is imported here.
"""

__version__ = "0.1.0"

"""Keep library chatter out of the CLIs' console and run-directory logs.

Hydra's job logging sends every record at INFO and above to the console and to
``<run dir>/<job>.log``. Some libraries log routine steps there (sentence-transformers: the
device and folder of every model load; faiss: which CPU build it loaded), which buries the
run's own lines. Their warnings and errors still show.
"""

from __future__ import annotations

import logging

#: Loggers whose records below WARNING are chatter in the CLIs. ``bm25s`` forces its logger
#: to DEBUG on import; ``corpora.retrieval.bm25`` undoes that for any caller, this covers it
#: in case bm25s was imported some other way first.
LIBRARY_LOGGERS = ("bm25s", "faiss", "sentence_transformers")


def quiet_library_loggers(level: int = logging.WARNING) -> None:
    """Set the :data:`LIBRARY_LOGGERS` to ``level`` (their records below it are dropped)."""
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(level)

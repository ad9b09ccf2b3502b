"""Optional cross-encoder reranking of the top hits (sentence-transformers ``CrossEncoder``, loaded lazily)."""
from __future__ import annotations

import logging
import math
import os
import threading
from typing import Any, Sequence

log = logging.getLogger(__name__)


class CrossEncoderReranker:
    """Scores (query, passage) pairs with a cross-encoder; the sigmoid of its logit is the hit's score."""

    def __init__(self, model: str, *, candidates: int = 20, batch_size: int = 32, device: str | None = None,
                 max_length: int = 256) -> None:
        """Remember the model path or name; it loads on first use."""
        self.model = model
        self.candidates = candidates
        self.batch_size = batch_size
        self.device = device
        self.max_length = max_length
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        """Load the cross-encoder once, offline."""
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import CrossEncoder

                self._model = CrossEncoder(self.model, device=self.device, max_length=self.max_length)
                log.info("loaded reranker %s", self.model)
        return self._model

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """Relevance of each passage to the query, in [0, 1]."""
        if not passages:
            return []
        logits = self.load().predict([(query, p) for p in passages], batch_size=self.batch_size,
                                     show_progress_bar=False, activation_fn=None)
        return [1.0 / (1.0 + math.exp(-float(x))) for x in list(logits)]

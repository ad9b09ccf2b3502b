"""Flood the chat as one student and count what is answered: the fair-use limits on a fresh install's defaults.

    python bench/quota/flood.py [--questions 440] [--rpm 5 --model-questions 15]

Runs the real app (SQLite in a temporary folder, extractive answers, no Redis) in this process. Prints how many
questions were answered (200) and refused (429, by code); the catalogue part sends ``--model-questions`` from
different students to a model whose catalogue entry says ``requests_per_minute = --rpm``.
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from flask_migrate import upgrade  # noqa: E402

from lti_tool import create_app  # noqa: E402
from lti_tool.config import Config  # noqa: E402
from lti_tool.context import SessionToken, issue_token  # noqa: E402
from lti_tool.extensions import db  # noqa: E402


def main() -> None:
    """Flood, count, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=440)
    parser.add_argument("--rpm", type=int, default=5)
    parser.add_argument("--model-questions", type=int, default=15)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="quota-flood-"))
    catalogue = folder / "models.toml"
    catalogue.write_text('[[models]]\nkey = "small"\nlabel = "Small"\nkind = "local"\nmodel = "m"\n'
                         f'context_window = 4096\nrequests_per_minute = {args.rpm}\n', encoding="utf-8")
    config = Config(secret_key="s" * 48, pseudonym_key="p" * 48, embedding_model="hashing", testing=True,
                    model_catalogue=str(catalogue), database_url=f"sqlite:///{folder / 'db.sqlite3'}",
                    instance_path=str(folder)).resolved(str(folder))
    app = create_app(config)
    from course_bots import backends
    from course_bots.llm.extractive import ExtractiveBackend
    from course_bots.models import CourseBot
    from course_bots.privacy import consent
    from course_bots.settings.operations import settings_for_update

    backends.backend_for = lambda entry: ExtractiveBackend()  # no model weights here
    with app.app_context():
        upgrade()
        bots = [CourseBot(issuer="https://lms.example", deployment_id="1", context_id=c, title=c)
                for c in ("flood", "model")]
        db.session.add_all(bots)
        db.session.commit()
        settings_for_update(bots[1].id, "en").model_key = "small"
        db.session.commit()

        def student(bot: CourseBot, number: int) -> dict[str, str]:
            now = int(time.time())
            token = SessionToken(issuer=bot.issuer, deployment_id="1", bot_id=bot.id, pseudonym=f"{number:064x}",
                                 roles=("learner",), locale="de-DE", expires_at=now + 3600, launched_at=now)
            consent.record_consent(token, True, consent.current_notice(bot.issuer, "de-DE").version)
            db.session.commit()
            return {"Authorization": "Bearer " + issue_token(config.secret_key, token)}

        client = app.test_client()

        def ask(bot: CourseBot, headers: dict[str, str], n: int) -> str:
            response = client.post(f"/api/v1/bots/{bot.id}/chat", headers=headers,
                                   json={"question": "Wann ist die Klausur?", "client_id": f"q{n}"})
            response.get_data()
            return "200" if response.status_code == 200 else f"429 {response.get_json()['error']['code']}"

        flood: collections.Counter[str] = collections.Counter()
        started = time.monotonic()
        headers = student(bots[0], 1)
        for n in range(args.questions):
            flood[ask(bots[0], headers, n)] += 1
        print(f"one student, {args.questions} questions in {time.monotonic() - started:.1f} s: {dict(flood)}")
        model = collections.Counter(ask(bots[1], student(bots[1], 100 + n), n) for n in range(args.model_questions))
        print(f"{args.model_questions} students, one model at requests_per_minute={args.rpm}: {dict(model)}")


if __name__ == "__main__":
    main()

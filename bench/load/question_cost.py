"""Web-worker CPU per question on the production path, and where it goes.

``python bench/load/question_cost.py --questions 60`` with the ``COURSEBOTS_*`` environment of the seeded load-test
database (bench/load/seed.py ran first; PostgreSQL, Redis and the default embedding model, as in docs/BENCHMARKS.md
"issue 15: load"). It starts bench/load/fake_llm.py (10-token answers, no pauses) in its own process, builds the app
from the environment with the OpenAI-compatible backend pointed at it, and posts questions one after another to
``/api/v1/bots/<id>/chat`` through the Flask test client as the seeded students (each question new, each student in
a conversation of their own), reading every event as it streams. It prints this process's CPU per question
(``time.process_time``, all threads: the query embedding runs in native threads) and the wall time per question.

``--profile FILE`` runs the timed questions under cProfile and prints the 40 functions with the most own time and
the 40 with the most cumulative time (the embedding's native threads are not seen by cProfile; their CPU is in the
per-question figure).
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.load.token_cost import start_fake  # noqa: E402
from lti_tool import create_app  # noqa: E402


class Asker:
    """The app from the environment and the seeded students; one question at a time through the real view."""

    def __init__(self, students: dict[str, Any], base_url: str) -> None:
        """Build the app with the OpenAI-compatible backend at ``base_url`` (the fake server)."""
        os.environ.update(COURSEBOTS_LLM_BACKEND="openai", COURSEBOTS_LLM_BASE_URL=base_url,
                          COURSEBOTS_LLM_MODEL="fake", COURSEBOTS_LLM_API_KEY="bench")
        self.app = create_app()
        self.client = self.app.test_client()
        self.students = students
        self.asked = 0
        self.conversations: dict[int, int] = {}
        self.tag = f"{int(time.time()) % 100000:05d}"

    def ask(self) -> None:
        """Post one question as the next student and read its stream to the end."""
        number = self.asked % len(self.students["tokens"])
        questions = self.students["questions"]
        question = f"{questions[(self.asked * 7919) % len(questions)]} ref-{ref_word(self.asked)}{self.tag}"
        self.asked += 1
        body: dict[str, Any] = {"question": question, "client_id": f"cost-{self.tag}-{self.asked}"}
        if number in self.conversations:
            body["conversation_id"] = self.conversations[number]
        response = self.client.post(f"/api/v1/bots/{self.students['bot_id']}/chat", json=body, buffered=False,
                                    headers={"Authorization": f"Bearer {self.students['tokens'][number]}"})
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        last = ""
        for piece in response.response:
            text = piece.decode() if isinstance(piece, bytes) else piece
            if text.startswith("event: status") and '"started"' in text:
                self.conversations[number] = json.loads(text.split("data: ", 1)[1])["conversation_id"]
            last = text
        response.close()
        assert last.startswith("event: done"), last[:300]


def ref_word(number: int) -> str:
    """Letters only (digits could be scrubbed as personal data)."""
    word = ""
    while True:
        number, rest = divmod(number, 26)
        word = chr(97 + rest) + word
        if not number:
            return word


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--warm", type=int, default=5)
    parser.add_argument("--students", default="/tmp/coursebots-load/students.json")
    parser.add_argument("--profile", default="")
    args = parser.parse_args()
    students = json.loads(Path(args.students).read_text(encoding="utf-8"))
    fake, base_url = start_fake(10)
    try:
        asker = Asker(students, base_url)
        for _ in range(args.warm):
            asker.ask()
        profiler = cProfile.Profile() if args.profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for _ in range(args.questions):
            asker.ask()
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"{args.questions} questions: CPU {cpu / args.questions * 1000:.1f} ms per question, "
              f"wall {wall / args.questions * 1000:.1f} ms per question")
        if profiler:
            profiler.dump_stats(args.profile)
            stats = pstats.Stats(profiler)
            stats.sort_stats("tottime").print_stats(40)
            stats.sort_stats("cumulative").print_stats(60)
    finally:
        fake.terminate()
        fake.wait()


if __name__ == "__main__":
    main()

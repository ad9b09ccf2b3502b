"""A bounded asyncio load client: students ramp up to N concurrently open answer streams and keep asking.

``python bench/load/client.py --base-url http://127.0.0.1:8000 --students /tmp/coursebots-load/students.json
--streams 300 --ramp 20 --hold 30 [--fake-llm http://127.0.0.1:8011] [--database-url postgresql://...]
[--server-pid PID] --out result.json``

Student ``i`` starts after ``i * ramp / streams`` seconds and asks one question after another (new client id each,
same conversation) until ``ramp + hold`` seconds have passed, so the open streams climb to ``--streams`` and stay
there. Per question it records the time to the first ``token`` event (a ``status`` event does not count), to
``done``, and any error (a status other than 200, an ``error`` event, a stream without ``done``, a broken
connection). With ``--fake-llm`` the backend's own TTFT for each question (reported by bench/load/fake_llm.py) is
subtracted: "added latency". It polls ``/metrics`` for the server's ``coursebots_open_streams`` gauge (max kept),
samples the RSS of ``--server-pid`` and its children, and with ``--database-url`` checks that every question and
its answer are stored exactly once.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import string
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

GAUGE = re.compile(r"^coursebots_open_streams(?:\{[^}]*\})?\s+([0-9.eE+-]+)\s*$", re.MULTILINE)


def ref_word(number: int) -> str:
    """A letters-only tag for question ``number`` (digits could be scrubbed as personal data)."""
    letters = ""
    number += 26 ** 4
    while number:
        number, rest = divmod(number, 26)
        letters = string.ascii_lowercase[rest] + letters
    return letters


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank) of values, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered))) - 1))]


class Load:
    """The run's state: results per question, open streams, samples."""

    def __init__(self, args: argparse.Namespace, students: dict[str, Any]) -> None:
        """Prepare a run with the parsed arguments and the seeded students."""
        self.args, self.students = args, students
        self.results: list[dict[str, Any]] = []
        self.open = 0
        self.max_open = 0
        self.server_max_open = 0.0
        self.rss: dict[int, int] = {}
        self.cpu: dict[int, float] = {}  # CPU seconds of each server process, last seen
        self.cpu0: dict[int, float] = {}  # ... and when the load began (after start-up and warming)
        self.counter = 0
        self.stop_at = 0.0
        self.run_tag = "".join(random.choice(string.ascii_lowercase) for _ in range(6))

    async def student(self, session: aiohttp.ClientSession, number: int, delay: float) -> None:
        """One student: wait for the ramp, then ask questions back to back until the end."""
        await asyncio.sleep(delay)
        token = self.students["tokens"][number % len(self.students["tokens"])]
        questions = self.students["questions"]
        conversation: int | None = None
        while self.args.one_question or time.monotonic() < self.stop_at:  # with --one-question: exactly once
            self.counter += 1
            ref = self.run_tag + ref_word(self.counter)  # unique across runs: a rerun never repeats a question
            question = f"{questions[(self.counter * 7919) % len(questions)]} ref-{ref}"
            result = await self.ask(session, token, question, ref, conversation)
            conversation = result.get("conversation_id") or conversation
            self.results.append(result)
            if self.args.one_question:
                return

    async def ask(self, session: aiohttp.ClientSession, token: str, question: str, ref: str,
                  conversation: int | None) -> dict[str, Any]:
        """POST one question and read its stream."""
        client_id = uuid.uuid4().hex
        result: dict[str, Any] = {"ref": ref, "client_id": client_id, "error": None, "sent": time.monotonic()}
        url = f"{self.args.base_url}/api/v1/bots/{self.students['bot_id']}/chat"
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            async with session.post(url, json={"question": question, "client_id": client_id,
                                               "conversation_id": conversation},
                                    headers={"Authorization": f"Bearer {token}"}) as response:
                if response.status != 200:
                    result["error"] = f"http {response.status}: {(await response.text())[:200]}"
                    return result
                event = None
                async for raw in response.content:
                    line = raw.decode("utf-8").rstrip("\n")
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event:
                        if event == "token" and "first_token" not in result:
                            result["first_token"] = time.monotonic()
                        elif event == "status":
                            data = json.loads(line[6:])
                            result["conversation_id"] = data.get("conversation_id") or result.get("conversation_id")
                        elif event == "done":
                            data = json.loads(line[6:])
                            result["done"] = time.monotonic()
                            result["conversation_id"] = data.get("conversation_id")
                            result["message_id"] = data.get("message_id")
                        elif event == "error":
                            result["error"] = f"event error: {line[6:200]}"
                        event = None
                if "done" not in result and not result["error"]:
                    result["error"] = "stream ended without done"
        except Exception as exc:  # a broken connection, a timeout
            result["error"] = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            self.open -= 1
        return result

    async def watch(self, session: aiohttp.ClientSession) -> None:
        """Poll the server's open-streams gauge and the processes' memory every half second."""
        import psutil

        processes: list[Any] = []
        if self.args.server_pid:
            root = psutil.Process(self.args.server_pid)
        while True:
            try:
                async with session.get(f"{self.args.base_url}/metrics") as response:
                    match = GAUGE.search(await response.text())
                    if match:
                        self.server_max_open = max(self.server_max_open, float(match.group(1)))
            except Exception:
                pass
            if self.args.server_pid:
                try:
                    processes = [root, *root.children(recursive=True)]
                    for process in processes:
                        self.rss[process.pid] = max(self.rss.get(process.pid, 0), process.memory_info().rss)
                        times = process.cpu_times()
                        self.cpu[process.pid] = times.user + times.system
                        self.cpu0.setdefault(process.pid, times.user + times.system)
                except psutil.Error:
                    pass
            await asyncio.sleep(0.5)

    async def run(self) -> None:
        """Ramp, hold, and wait for the last answers."""
        count = self.args.streams
        self.stop_at = time.monotonic() + self.args.ramp + self.args.hold
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=self.args.timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            watcher = asyncio.create_task(self.watch(session))
            self.started = time.monotonic()
            await asyncio.gather(*(self.student(session, i, i * self.args.ramp / count) for i in range(count)))
            self.ended = time.monotonic()
            watcher.cancel()


async def backend_ttfts(url: str) -> dict[str, float]:
    """The fake model server's own TTFT per question ref."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/stats") as response:
            return dict((await response.json())["ttft"])


def stored_once(database_url: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Check in the database: each question stored exactly once, each with exactly one successful answer."""
    import psycopg

    client_ids = [r["client_id"] for r in results]
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT q.client_message_id, count(DISTINCT q.id), count(a.id) FILTER (WHERE a.status = 'ok'), "
            "count(a.id) FROM message q LEFT JOIN message a ON a.reply_to_id = q.id "
            "WHERE q.role = 'user' AND q.client_message_id = ANY(%s) GROUP BY q.client_message_id",
            (client_ids,)).fetchall()
    found = {row[0]: row[1:] for row in rows}
    missing = [c for c in client_ids if c not in found]
    twice = [c for c, (questions, _, _) in found.items() if questions != 1]
    not_one_answer = [c for c, (_, ok, answers) in found.items() if ok != 1 or answers != 1]
    return {"missing_examples": missing[:3], "questions_checked": len(client_ids),
            "questions_missing": len(missing), "questions_twice": len(twice),
            "answers_not_exactly_one": len(not_one_answer), "exactly_once": not (missing or twice or not_one_answer)}


def summarise(load: Load, ttfts: dict[str, float] | None, storage: dict[str, Any] | None) -> dict[str, Any]:
    """The run's figures."""
    results = load.results
    ok = [r for r in results if not r["error"]]
    first = [(r["first_token"] - r["sent"]) * 1000 for r in ok if "first_token" in r]
    added = [(r["first_token"] - r["sent"] - ttfts[r["ref"]]) * 1000 for r in ok
             if ttfts and "first_token" in r and r["ref"] in ttfts]
    done = [(r["done"] - r["sent"]) * 1000 for r in ok]
    errors: dict[str, int] = {}
    for r in results:
        if r["error"]:
            errors[r["error"][:80]] = errors.get(r["error"][:80], 0) + 1
    elapsed = load.ended - load.started
    cpu = sum(load.cpu[pid] - load.cpu0[pid] for pid in load.cpu)
    summary = {
        "streams_target": load.args.streams, "ramp_s": load.args.ramp, "hold_s": load.args.hold,
        "questions": len(results), "answered": len(ok), "errors": sum(errors.values()), "error_kinds": errors,
        "elapsed_s": round(elapsed, 1), "questions_per_s": round(len(ok) / elapsed, 2),
        "client_max_open_streams": load.max_open, "server_max_open_streams": load.server_max_open,
        "first_token_ms": {"p50": _r(percentile(first, 50)), "p95": _r(percentile(first, 95)),
                           "max": _r(max(first, default=None))},
        "answer_ms": {"p50": _r(percentile(done, 50)), "p95": _r(percentile(done, 95))},
        "rss_mb": {str(pid): round(rss / 2 ** 20) for pid, rss in sorted(load.rss.items())},
        # Server CPU per answered question during the load: what bounds questions/s on a machine of its own.
        "server_cpu_s": round(cpu, 1), "server_cpu_ms_per_question": _r(cpu * 1000 / len(ok) if ok else None),
    }
    if ttfts:
        summary["backend_ttft_ms_p50"] = _r(statistics.median(ttfts.values()) * 1000 if ttfts else None)
        summary["added_first_token_ms"] = {"p50": _r(percentile(added, 50)), "p95": _r(percentile(added, 95)),
                                           "max": _r(max(added, default=None)), "n": len(added)}
    if storage is not None:
        summary["storage"] = storage
    return summary


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--students", type=Path, default=Path("/tmp/coursebots-load/students.json"))
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--ramp", type=float, default=20.0)
    parser.add_argument("--hold", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--one-question", action="store_true", help="each student asks once")
    parser.add_argument("--fake-llm", default="", help="base URL of bench/load/fake_llm.py (for its TTFTs)")
    parser.add_argument("--database-url", default="", help="check exactly-once storage in this database")
    parser.add_argument("--server-pid", type=int, default=0, help="gunicorn's master pid (RSS of it and workers)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    load = Load(args, json.loads(args.students.read_text(encoding="utf-8")))
    asyncio.run(load.run())
    ttfts = asyncio.run(backend_ttfts(args.fake_llm)) if args.fake_llm else None
    storage = stored_once(args.database_url, load.results) if args.database_url else None
    summary = summarise(load, ttfts, storage)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

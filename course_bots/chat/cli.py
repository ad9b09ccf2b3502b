"""``flask --app lti_tool llm ...``: run our model server, and check any backend from the terminal."""
from __future__ import annotations

import json
import sys

import click
from flask.cli import AppGroup

from course_bots import backends
from course_bots.chat import usage
from course_bots.llm.cli_support import BACKEND_KINDS, build_backend, stream_to
from course_bots.llm.server import serve
from lti_tool.extensions import current_config

llm_cli = AppGroup("llm", help="Serve a local model and check model backends.")


@llm_cli.command("serve")
@click.option("--model", required=True, help="Hugging Face model id or local path.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8001, show_default=True, type=int)
@click.option("--max-batch", default=32, show_default=True, type=int, help="Sequences decoded together.")
@click.option("--max-queue", default=64, show_default=True, type=int, help="Waiting requests before 'busy'.")
@click.option("--idle-unload", default=None, type=float, help="Seconds idle before the model is unloaded.")
@click.option("--device", default=None, help="cuda, cuda:1, cpu (default: CUDA when present).")
@click.option("--max-context", default=None, type=int, help="Context window limit in tokens.")
def serve_command(model: str, host: str, port: int, max_batch: int, max_queue: int, idle_unload: float | None,
                  device: str | None, max_context: int | None) -> None:
    """Serve MODEL with continuous batching on an OpenAI-compatible API (one process per GPU)."""
    serve(model, host=host, port=port, max_batch=max_batch, max_queue=max_queue, idle_unload_s=idle_unload,
          device=device, max_context=max_context, api_key=current_config().llm_api_key or None)


@llm_cli.command("chat")
@click.argument("text")
@click.option("--backend", "kind", type=click.Choice(BACKEND_KINDS), default="local", show_default=True)
@click.option("--model", default=None, help="Model id/path (local) or model name (openai).")
@click.option("--base-url", default=None, help="OpenAI-compatible server, e.g. http://127.0.0.1:8001/v1")
@click.option("--api-key", default=None, help="Defaults to COURSEBOTS_LLM_API_KEY.")
@click.option("--system", default=None, help="A system prompt.")
@click.option("--max-tokens", default=256, show_default=True, type=int)
@click.option("--temperature", default=0.0, show_default=True, type=float)
@click.option("--timeout", default=120.0, show_default=True, type=float)
def chat_command(text: str, kind: str, model: str | None, base_url: str | None, api_key: str | None,
                 system: str | None, max_tokens: int, temperature: float, timeout: float) -> None:
    """Stream a completion of TEXT to the terminal through any backend (check a model before courses use it)."""
    try:
        backend = build_backend(kind, model, base_url, api_key or current_config().llm_api_key or None)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    code = stream_to(backend, text, sys.stdout, system=system, max_new_tokens=max_tokens, temperature=temperature,
                     timeout_s=timeout, err=sys.stderr)
    close = getattr(backend, "close", None)
    if callable(close):
        close()
    sys.exit(code)


@llm_cli.command("models")
@click.option("--platform", "issuer", default=None, help="Only entries allowed for this platform issuer.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def models_command(issuer: str | None, as_json: bool) -> None:
    """List the model catalogue as administrators see it (the default first; never URLs or keys)."""
    rows = backends.catalogue_rows(current_config(), issuer)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        where = "external" if row["external"] else "local"
        click.echo(f"{row['key'] or '(default)':<20} {row['label']}  {where}  context {row['context_window']}  "
                   f"answer {row['max_answer_tokens']}{'  [default]' if row['default'] else ''}")


@click.command("usage")
@click.option("--issuer", default=None, help="Only this platform.")
@click.option("--by", type=click.Choice(["course", "platform"]), default="course")
def usage_command(issuer: str | None, by: str) -> None:
    """Usage counts per course or platform (questions, answers, errors, tokens) — never content."""
    rows = usage.usage_by_platform() if by == "platform" else usage.usage_by_course(issuer)
    click.echo(json.dumps(rows, indent=2, ensure_ascii=False, default=str))

"""deploy/k8s, deploy/systemd, deploy/nginx: manifests validate against the Kubernetes schemas offline, units parse."""
from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
UNITS = sorted((ROOT / "deploy" / "systemd").iterdir())


def documents() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, doc) for path in K8S for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("name,doc", documents(), ids=lambda v: v if isinstance(v, str) else v.get("kind", ""))
def test_manifest_validates_strictly(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_the_validator_catches_a_misspelt_field() -> None:
    doc = next(d for n, d in documents() if d["kind"] == "Deployment")
    broken = {**doc, "spec": {**doc["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_every_role_is_there_and_keys_come_from_a_secret() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for _, d in documents()}
    for needed in [("Deployment", "coursebots-web"), ("Deployment", "coursebots-worker"),
                   ("Deployment", "coursebots-model"), ("Job", "coursebots-migrate"), ("Secret", "coursebots-secrets"),
                   ("Service", "postgres"), ("Service", "redis"), ("Ingress", "coursebots")]:
        assert needed in kinds
    model = next(d for _, d in documents() if d["metadata"]["name"] == "coursebots-model" and d["kind"] == "Deployment")
    pod = model["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1 and pod["nodeSelector"]
    config = next(d for _, d in documents() if d["kind"] == "ConfigMap")["data"]
    assert not any("KEY" in key or "DATABASE_URL" in key for key in config)  # secrets never in the ConfigMap
    for _, doc in documents():
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] != "coursebots-model":
            env_from = doc["spec"]["template"]["spec"]["containers"][0]["envFrom"]
            assert {"secretRef": {"name": "coursebots-secrets"}} in env_from


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_systemd_unit_parses_with_required_keys(path: Path) -> None:
    parsed = unit(path)
    assert parsed["Unit"]["Description"]
    if path.suffix == ".service":
        service = parsed["Service"]
        assert service["ExecStart"].split()[0].startswith("/") and service["User"] == "coursebots"
        if path.name != "coursebots-purge.service":
            assert service["Restart"] == "always"
    if shutil.which("systemd-analyze"):
        result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True,
                                timeout=60, cwd=path.parent)
        # The programs live in /opt/coursebots on a real machine; everything else must verify cleanly.
        problems = [line for line in (result.stdout + result.stderr).splitlines()
                    if line.strip() and "is not executable" not in line]
        assert problems == []


def test_web_unit_reloads_gracefully_and_migrates_first() -> None:
    service = unit(ROOT / "deploy" / "systemd" / "coursebots-web.service")["Service"]
    assert "gunicorn -c deploy/gunicorn.conf.py wsgi:app" in service["ExecStart"]
    assert service["ExecReload"] == "/bin/kill -s HUP $MAINPID" and "db upgrade" in service["ExecStartPre"]
    assert int(service["TimeoutStopSec"]) > 90  # longer than gunicorn's graceful_timeout


def test_nginx_streams_unbuffered_over_tls() -> None:
    text = (ROOT / "deploy" / "nginx" / "coursebots.conf").read_text()
    chat = re.search(r"location ~ \^/api/v1/bots/\[0-9\]\+/chat\$ \{(.*?)\}", text, re.S)
    assert chat is not None
    assert "proxy_buffering off;" in chat.group(1) and "gzip off;" in chat.group(1)
    assert int(re.search(r"proxy_read_timeout (\d+)s;", chat.group(1)).group(1)) >= 60  # type: ignore[union-attr]
    assert "listen 443 ssl;" in text and "ssl_certificate " in text and "X-Forwarded-Proto" in text
    assert text.count("{") == text.count("}")

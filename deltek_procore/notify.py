"""Send the daily summary where the firm reads it: e-mail (SMTP) or a Slack-compatible webhook.

Configured by environment variables (none set: the summary is shown in the UI only):

- `DELTEK_PROCORE_NOTIFY_SMTP_HOST`, `..._SMTP_PORT` (587), `..._SMTP_FROM`, `..._SMTP_TO`
  (comma-separated), `..._SMTP_USERNAME`, `..._SMTP_PASSWORD`, `..._SMTP_STARTTLS` (1 unless
  the port is 25 or the host is loopback);
- `DELTEK_PROCORE_NOTIFY_WEBHOOK_URL`: a Slack-compatible incoming webhook (`{"text": ...}`).

A notifier that fails is reported, never raised: the summary is still in the UI.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage

import requests

from deltek_procore.pipeline.daily_summary import DailySummary, TenantSummaries

log = logging.getLogger(__name__)
PREFIX = "DELTEK_PROCORE_NOTIFY_"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: one tenant's summary, or every tenant's grouped by tenant
Summary = DailySummary | TenantSummaries


@dataclass(frozen=True)
class Delivery:
    channel: str
    ok: bool
    detail: str


def _smtp(summary: Summary, env: Mapping[str, str]) -> Delivery:
    host = env[f"{PREFIX}SMTP_HOST"]
    port = int(env.get(f"{PREFIX}SMTP_PORT") or 587)
    recipients = [a.strip() for a in (env.get(f"{PREFIX}SMTP_TO") or "").split(",") if a.strip()]
    if not recipients:
        return Delivery("smtp", False, f"set {PREFIX}SMTP_TO (comma-separated addresses)")
    message = EmailMessage()
    message["Subject"] = summary.subject()
    message["From"] = env.get(f"{PREFIX}SMTP_FROM") or "deltek-procore@localhost"
    message["To"] = ", ".join(recipients)
    message.set_content(summary.text())
    starttls = env.get(f"{PREFIX}SMTP_STARTTLS")
    use_tls = starttls == "1" if starttls is not None else (port != 25 and host not in LOOPBACK)
    try:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            if use_tls:
                smtp.starttls()
            user = env.get(f"{PREFIX}SMTP_USERNAME")
            if user:
                smtp.login(user, env.get(f"{PREFIX}SMTP_PASSWORD") or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        # the exception text may echo the server's answer, never our password
        return Delivery("smtp", False, f"{host}:{port}: {type(exc).__name__}: {exc}")
    return Delivery("smtp", True, f"sent to {len(recipients)} recipient(s) via {host}:{port}")


def _webhook(summary: Summary, env: Mapping[str, str]) -> Delivery:
    url = env[f"{PREFIX}WEBHOOK_URL"]
    where = url.split("?", 1)[0].rsplit("/", 1)[0]  # a webhook URL's last segment is its secret
    try:
        resp = requests.post(
            url, json={"text": f"*{summary.subject()}*\n{summary.markdown()}"}, timeout=(5, 30)
        )
    except requests.RequestException as exc:
        return Delivery("webhook", False, f"{where}/…: {type(exc).__name__}")
    if resp.status_code >= 300:
        return Delivery("webhook", False, f"{where}/… answered {resp.status_code}")
    return Delivery("webhook", True, f"posted to {where}/…")


def send(summary: Summary, env: Mapping[str, str]) -> list[Delivery]:
    """Every configured channel; [] when none is configured (UI only)."""
    out: list[Delivery] = []
    if env.get(f"{PREFIX}SMTP_HOST"):
        out.append(_smtp(summary, env))
    if env.get(f"{PREFIX}WEBHOOK_URL"):
        out.append(_webhook(summary, env))
    for delivery in out:
        (log.info if delivery.ok else log.warning)("daily summary via %s: %s",
                                                   delivery.channel, delivery.detail)  # fmt: skip
    return out

"""Smoke test of the embedded default: `crm db upgrade` and the write API on SQLite."""

import sqlite3
import subprocess
import sys

from litestar.testing import TestClient

from api.app import create_app
from infra.settings import Settings


def test_embedded_sqlite_default_migrates_and_accepts_every_write(tmp_path):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    done = subprocess.run(
        [sys.executable, "-c", "from crm_cli import main; main()", "db", "upgrade"],
        env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    with TestClient(app=create_app(Settings(database_url=url))) as client:
        r = client.post("/api/forms/submit", json={"formType": "quote_request", "email": "A@b.io"})
        assert r.status_code == 201, r.text
        assert client.post("/api/newsletter-subscribe", json={"email": "a@b.io"}).status_code == 201
        assert client.post("/api/newsletter-subscribe", json={"email": "a@b.io"}).status_code == 201
        reg = client.post(
            "/api/auth/register", json={"name": "A", "email": "a@b.io", "password": "pw-123456"}
        )
        assert reg.status_code == 201, reg.text
        rfq = client.post(
            "/api/v1/rfq/submit", json={"email": "a@b.io", "lines": [{"sku": "S", "quantity": 1}]}
        )
        assert rfq.status_code == 201, rfq.text
        bad = client.post("/api/v1/rfq/submit", json={"email": "a@b.io", "lines": []})
        assert bad.status_code == 400
    db = sqlite3.connect(tmp_path / "crm.db")
    counts = {
        t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in (
            "form_submissions",
            "leads",
            "newsletter_subscribers",
            "crm_notifications",
            "quotes",
        )
    }
    assert counts == {
        "form_submissions": 1,
        "leads": 2,
        "newsletter_subscribers": 1,
        "crm_notifications": 4,
        "quotes": 1,
    }
    ranks = db.execute(
        "SELECT priority FROM crm_notifications WHERE read = 0 ORDER BY priority_rank DESC, created_at"
    ).fetchall()
    assert [r[0] for r in ranks] == ["HIGH", "HIGH", "NORMAL", "LOW"]

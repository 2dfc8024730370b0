"""The overview shows the average lead score, the status distribution and conversion by
source (issue 13, item 5), the same figures as /api/admin/monitoring."""

import re
import uuid

from tests.integration.admin_support import admin_client

LEADS = [  # (source, status, score)
    ("web_form", "CONVERTED", 80),
    ("web_form", "NEW", 50),
    ("web_form", "NEW", 30),
    ("referral", "CONVERTED", 90),
    ("newsletter", "REJECTED", 10),
]


def test_overview_shows_average_score_status_distribution_and_conversion_by_source(
    make_client, settings, engine
):
    with engine.begin() as conn:
        for i, (source, status, score) in enumerate(LEADS):
            conn.exec_driver_sql(
                "INSERT INTO leads (id, email, type, source, status, lead_score) "
                "VALUES (%(id)s, %(email)s, 'LEAD', %(source)s, %(status)s, %(score)s)",
                {
                    "id": uuid.uuid4(),
                    "email": f"l{i}@x.example",
                    "source": source,
                    "status": status,
                    "score": score,
                },
            )
    admin = admin_client(make_client, settings)
    html = admin.get("/admin/crm-sync").text
    api = admin.get("/api/admin/monitoring").json()

    average = re.search(
        r'data-insight="averageScore".*?<span class="score \w+">([\d.]+)<', html, re.S
    )
    assert average and float(average.group(1)) == round(sum(s for *_, s in LEADS) / len(LEADS), 1)
    for s in api["statusDistribution"]:
        row = re.search(rf'data-status="{s["status"]}">.*?<b>(\d+)</b>', html, re.S)
        assert row and int(row.group(1)) == s["count"]
    for c in api["conversionBySource"]:
        row = re.search(
            rf'<tr data-source="{c["source"]}">.*?<td class="r">(\d+)</td><td class="r">(\d+)</td>'
            r'<td class="r"><b>([\d.]+)%</b>',
            html,
            re.S,
        )
        assert row, c
        assert (int(row.group(1)), int(row.group(2))) == (c["total"], c["converted"])
        assert float(row.group(3)) == round(c["conversionRate"], 1)
    assert {c["source"]: c["conversionRate"] for c in api["conversionBySource"]}[
        "web_form"
    ] == 33.33

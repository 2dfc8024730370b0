"""OpenAPI 3.1 at /schema documents every public write path."""


def test_openapi_documents_the_public_paths(client):
    r = client.get("/schema/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.1")
    for path in (
        "/api/forms/submit",
        "/api/auth/register",
        "/api/newsletter-subscribe",
        "/api/newsletter-unsubscribe",
        "/api/v1/rfq/submit",
    ):
        assert "post" in spec["paths"][path], path
    params = spec["paths"]["/api/forms/submit"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in params)
    assert "FormSubmitted" in str(spec["paths"]["/api/forms/submit"]["post"]["responses"]["201"])


def test_every_documented_400_is_the_error_shape_we_answer(client):
    spec = client.get("/schema/openapi.json").json()
    documented = [
        (path, method, op["responses"]["400"])
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "400" in op.get("responses", {})
    ]
    assert len(documented) > 10
    for path, method, response in documented:
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, method)
    assert set(spec["components"]["schemas"]["ErrorBody"]["required"]) >= {"field", "errors"}

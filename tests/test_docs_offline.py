"""The API docs page works offline: Swagger UI comes from an installed package, not a CDN."""

import pytest

pytestmark = pytest.mark.integration  # the `client` fixture serves the real assistant


def test_docs_page_uses_local_assets(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs-static/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
    js = client.get("/docs-static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert client.get("/openapi.json").json()["paths"]["/api/ask"]

"""The shared HTTP client against a real server on 127.0.0.1."""

import gzip
import socket
import threading
from dataclasses import replace

import pytest

from mailer.sources.http import USER_AGENT, FetchError, HttpClient, Validators
from tests.source_helpers import FAST, hanging_url, unused_port_url


@pytest.fixture
def client():
    c = HttpClient(FAST, sleep=lambda s: None)
    yield c
    c.close()


def test_user_agent_names_the_project_and_its_site(httpserver, client):
    httpserver.expect_request("/f", headers={"User-Agent": USER_AGENT}).respond_with_data("ok")
    assert client.get(httpserver.url_for("/f")).content == b"ok"
    assert USER_AGENT.startswith("WeerbaarNL-mailer/")
    assert USER_AGENT.endswith("(+https://www.platformjep.example.nl)")


def test_gzip_bodies_are_decoded(httpserver, client):
    body = "Één keer per week: nieuws over weerbaarheid".encode() * 50
    httpserver.expect_request("/f").respond_with_data(
        gzip.compress(body), headers={"Content-Encoding": "gzip"})
    assert client.get(httpserver.url_for("/f")).content == body


def test_conditional_get_sends_validators_and_understands_304(httpserver, client):
    httpserver.expect_ordered_request("/f").respond_with_data(
        "v1", headers={"ETag": '"abc"', "Last-Modified": "Tue, 01 Dec 2026 10:00:00 GMT"})
    httpserver.expect_ordered_request(
        "/f", headers={"If-None-Match": '"abc"',
                       "If-Modified-Since": "Tue, 01 Dec 2026 10:00:00 GMT"},
    ).respond_with_data("", status=304)
    first = client.get(httpserver.url_for("/f"))
    assert first.validators == Validators('"abc"', "Tue, 01 Dec 2026 10:00:00 GMT")
    second = client.get(httpserver.url_for("/f"), validators=first.validators)
    assert second.not_modified and second.content == b""
    httpserver.check_assertions()


def test_redirects_are_followed_and_the_final_url_kept(httpserver, client):
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": "/tmp"})
    httpserver.expect_request("/tmp").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/new")})
    httpserver.expect_request("/new").respond_with_data("here")
    doc = client.get(httpserver.url_for("/old"))
    assert doc.content == b"here" and doc.url == httpserver.url_for("/new")


def test_redirect_loops_stop_after_the_limit(httpserver, client):
    httpserver.expect_request("/loop").respond_with_data(
        "", status=302, headers={"Location": "/loop"})
    with pytest.raises(FetchError, match="more than 3 redirects"):
        client.get(httpserver.url_for("/loop"))


def test_redirect_to_a_local_file_is_refused(httpserver, client):
    httpserver.expect_request("/evil").respond_with_data(
        "", status=302, headers={"Location": "file:///etc/passwd"})
    with pytest.raises(FetchError, match="non-http"):
        client.get(httpserver.url_for("/evil"))


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "gopher://x/", "javascript:alert(1)"])
def test_only_http_https_and_file_schemes(client, url):
    with pytest.raises(FetchError, match="not allowed"):
        client.get(url)


def test_file_urls_are_read(tmp_path, client):
    path = tmp_path / "agenda.ics"
    path.write_bytes(b"BEGIN:VCALENDAR")
    assert client.get(path.as_uri()).content == b"BEGIN:VCALENDAR"
    with pytest.raises(FetchError, match="cannot read file"):
        client.get((tmp_path / "missing.ics").as_uri())


def test_404_is_an_error_naming_url_and_status(httpserver, client):
    httpserver.expect_request("/gone").respond_with_data("nope", status=404)
    with pytest.raises(FetchError) as caught:
        client.get(httpserver.url_for("/gone"))
    assert caught.value.url.endswith("/gone") and "HTTP 404" in caught.value.reason
    assert len(httpserver.log) == 1  # 4xx is not retried


def test_5xx_is_retried_then_succeeds(httpserver, client):
    httpserver.expect_ordered_request("/f").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/f").respond_with_data("boom", status=500)
    httpserver.expect_ordered_request("/f").respond_with_data("ok")
    assert client.get(httpserver.url_for("/f")).content == b"ok"
    assert len(httpserver.log) == 3


def test_5xx_gives_up_after_the_retries_with_growing_backoff(httpserver):
    waits: list[float] = []
    client = HttpClient(replace(FAST, backoff=0.25), sleep=waits.append)
    httpserver.expect_request("/f").respond_with_data("boom", status=500)
    with pytest.raises(FetchError, match="HTTP 500"):
        client.get(httpserver.url_for("/f"))
    assert len(httpserver.log) == 3 and waits == [0.25, 0.5]


def test_connection_refused_is_retried_and_reported(client):
    with pytest.raises(FetchError, match="connection failed"):
        client.get(unused_port_url("/feed"))


def test_a_server_that_hangs_times_out(httpserver):
    client = HttpClient(replace(FAST, timeout=0.3))
    with hanging_url(httpserver, "/slow") as location, \
            pytest.raises(FetchError, match="timed out after 0.3 s"):
        client.get(location)
    assert len(httpserver.log) <= 1  # a hanging server is not asked three times


def test_bodies_over_the_size_cap_are_refused(httpserver):
    client = HttpClient(replace(FAST, max_bytes=1000))
    httpserver.expect_request("/big").respond_with_data(b"x" * 5000)
    with pytest.raises(FetchError, match="exceeds the 1000 byte limit"):
        client.get(httpserver.url_for("/big"))


def test_gzip_bombs_are_capped_after_decoding(httpserver):
    client = HttpClient(replace(FAST, max_bytes=100_000))
    httpserver.expect_request("/bomb").respond_with_data(
        gzip.compress(b"\0" * 5_000_000), headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="byte limit"):
        client.get(httpserver.url_for("/bomb"))


def test_a_response_cut_off_midway_is_an_error():
    """A raw server that promises 1000 bytes and closes after 10."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_once():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n"
                         b"Content-Type: application/rss+xml\r\n\r\n<rss><chan")

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    try:
        with pytest.raises(FetchError, match="reading the response failed|truncated"):
            HttpClient(replace(FAST, retries=0)).get(f"http://127.0.0.1:{port}/feed")
    finally:
        thread.join(5)
        listener.close()

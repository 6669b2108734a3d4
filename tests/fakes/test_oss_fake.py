"""Self-tests for FakeOSS, driven through the real oss2 client (V1 and V4 signing)."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import oss2
import oss2.exceptions as oe
import pytest

from .oss_fake import FakeOSS

AK, SK, BUCKET, REGION = "test-ak", "test-sk", "easel-test", "cn-hangzhou"


@pytest.fixture
def fake() -> Iterator[FakeOSS]:
    with FakeOSS().running() as f:
        yield f


@pytest.fixture
def public_fake() -> Iterator[FakeOSS]:
    with FakeOSS(public_read=True).running() as f:
        yield f


def make_bucket(fake: FakeOSS, version: str, *, ak: str = AK, sk: str = SK, bucket: str = BUCKET,
                timeout: float = 5) -> oss2.Bucket:
    if version == "v4":
        return oss2.Bucket(oss2.AuthV4(ak, sk), fake.endpoint, bucket, region=REGION, connect_timeout=timeout)
    if version == "anonymous":
        return oss2.Bucket(oss2.AnonymousAuth(), fake.endpoint, bucket, connect_timeout=timeout)
    return oss2.Bucket(oss2.Auth(ak, sk), fake.endpoint, bucket, connect_timeout=timeout)


VERSIONS = pytest.mark.parametrize("version", ["v1", "v4"])


def error_xml_of(resp: httpx.Response) -> dict[str, str]:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(resp.content)
    assert root.tag == "Error"
    return {c.tag: c.text or "" for c in root}


# --------------------------------------------------------------------------- round trip


@VERSIONS
def test_put_get_head_exists_round_trip(fake: FakeOSS, version: str) -> None:
    b = make_bucket(fake, version)
    data = b"\x89PNG fake image bytes"
    put = b.put_object("imgs/cat.png", data, headers={"Content-Type": "image/png",
                                                       "x-oss-meta-prompt": "a cat", "x-oss-meta-seed": "42"})
    assert put.status == 200
    assert put.etag == fake.get("imgs/cat.png").etag  # type: ignore[union-attr]
    assert put.etag == put.etag.upper() and len(put.etag) == 32
    assert put.crc is not None and put.request_id

    got = b.get_object("imgs/cat.png")
    assert got.read() == data
    assert got.content_type == "image/png"
    assert got.content_length == len(data)
    assert got.etag == put.etag
    assert got.headers["x-oss-meta-prompt"] == "a cat"
    assert got.headers["x-oss-object-type"] == "Normal"
    assert got.server_crc == put.crc

    head = b.head_object("imgs/cat.png")
    assert head.content_type == "image/png" and head.content_length == len(data)
    assert head.headers["x-oss-meta-seed"] == "42"
    assert abs(head.last_modified - time.time()) < 60
    assert b.object_exists("imgs/cat.png") is True
    assert b.object_exists("imgs/dog.png") is False
    meta = b.get_object_meta("imgs/cat.png")
    assert meta.content_length == len(data) and meta.etag == put.etag

    obj = fake.objects[(BUCKET, "imgs/cat.png")]
    assert obj.data == data and obj.content_type == "image/png"
    assert obj.meta == {"x-oss-meta-prompt": "a cat", "x-oss-meta-seed": "42"}
    kinds = {r.auth_kind for r in fake.requests}
    assert kinds == {version}
    assert fake.requests[0].path == f"/{BUCKET}/imgs%2Fcat.png"
    assert all(r.status in (200, 404) for r in fake.requests)


@VERSIONS
def test_get_object_to_file_checks_crc(fake: FakeOSS, version: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    b = make_bucket(fake, version)
    b.put_object("a.bin", b"0123456789")
    b.get_object_to_file("a.bin", str(tmp_path / "a.bin"))
    assert (tmp_path / "a.bin").read_bytes() == b"0123456789"


@VERSIONS
def test_content_type_defaults(fake: FakeOSS, version: str) -> None:
    b = make_bucket(fake, version)
    b.put_object("noext", b"x")
    b.put_object("guessed.webp", b"x")  # oss2 guesses from the extension
    assert b.head_object("noext").content_type == "application/octet-stream"
    assert b.head_object("guessed.webp").content_type == "image/webp"


@VERSIONS
@pytest.mark.parametrize("key", ["a b+c.png", "目录/图片 1.png", "deep/nested/path/x.jpg",
                                 "odd chars/!*'();:@&=$,?#[]%.png", "ü+%2F.png"])
def test_awkward_keys(fake: FakeOSS, version: str, key: str) -> None:
    b = make_bucket(fake, version)
    b.put_object(key, key.encode(), headers={"x-oss-meta-k": "v"})
    assert (BUCKET, key) in fake.objects
    assert b.get_object(key).read() == key.encode()
    assert b.head_object(key).headers["x-oss-meta-k"] == "v"
    assert b.object_exists(key)
    assert [o.key for o in oss2.ObjectIterator(b)] == [key]
    b.delete_object(key)
    assert not b.object_exists(key)


# --------------------------------------------------------------------------- errors


@VERSIONS
def test_missing_key_get_and_head(fake: FakeOSS, version: str) -> None:
    b = make_bucket(fake, version)
    with pytest.raises(oe.NoSuchKey) as get_err:
        b.get_object("nope.png")
    assert get_err.value.status == 404 and get_err.value.details["Key"] == "nope.png"
    assert get_err.value.request_id
    with pytest.raises(oe.NoSuchKey) as head_err:  # decoded from x-oss-err, HEAD has no body
        b.head_object("nope.png")
    assert head_err.value.code == "NoSuchKey"
    head_rec = fake.requests_for("HEAD")[-1]
    assert head_rec.status == 404


@VERSIONS
def test_missing_bucket(fake: FakeOSS, version: str) -> None:
    b = make_bucket(fake, version, bucket="no-such-bucket")
    with pytest.raises(oe.NoSuchBucket):
        b.get_object("k")
    with pytest.raises(oe.NoSuchBucket):
        b.head_object("k")
    with pytest.raises(oe.NoSuchBucket):
        b.object_exists("k")


def test_error_body_shape(fake: FakeOSS) -> None:
    r = httpx.get(f"{fake.endpoint}/{BUCKET}/x", timeout=5)
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/xml"
    assert r.headers["x-oss-request-id"]
    assert r.text.startswith('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>')
    d = error_xml_of(r)
    assert d["RequestId"] == r.headers["x-oss-request-id"] and d["HostId"]
    h = httpx.head(f"{fake.endpoint}/{BUCKET}/x", timeout=5)
    assert h.status_code == 403 and h.content == b""
    assert b"<Code>AccessDenied</Code>" in base64.b64decode(h.headers["x-oss-err"])


@VERSIONS
def test_wrong_secret_and_unknown_key(fake: FakeOSS, version: str) -> None:
    bad = make_bucket(fake, version, sk="wrong-secret")
    with pytest.raises(oe.SignatureDoesNotMatch) as e:
        bad.put_object("imgs/x.png", b"x", headers={"x-oss-meta-prompt": "p"})
    sts = e.value.details["StringToSign"]
    if version == "v1":
        assert sts.startswith("PUT\n\nimage/png\n") and sts.endswith("x-oss-meta-prompt:p\n/easel-test/imgs/x.png")
    else:
        assert sts.startswith("OSS4-HMAC-SHA256\n")
        assert "/easel-test/imgs/x.png\n" in e.value.details["CanonicalRequest"]
    assert not fake.objects
    with pytest.raises(oe.SignatureDoesNotMatch):
        bad.head_object("imgs/x.png")  # from x-oss-err
    stranger = make_bucket(fake, version, ak="who-dis")
    with pytest.raises(oe.ServerError) as e2:
        stranger.get_object("imgs/x.png")
    assert (e2.value.status, e2.value.code) == (403, "InvalidAccessKeyId")


def test_v4_wrong_region(fake: FakeOSS) -> None:
    b = oss2.Bucket(oss2.AuthV4(AK, SK), fake.endpoint, BUCKET, region="us-west-1", connect_timeout=5)
    with pytest.raises(oe.SignatureDoesNotMatch):
        b.put_object("k", b"x")


@VERSIONS
def test_clock_skew_rejected(fake: FakeOSS, version: str) -> None:
    b = make_bucket(fake, version)
    fake.clock = lambda: time.time() + 3600
    with pytest.raises(oe.ServerError) as e:
        b.put_object("k", b"x")
    assert (e.value.status, e.value.code) == (403, "RequestTimeTooSkewed")


@VERSIONS
def test_content_md5_checked(fake: FakeOSS, version: str) -> None:
    b = make_bucket(fake, version)
    with pytest.raises(oe.InvalidDigest):
        b.put_object("k", b"x", headers={"Content-MD5": base64.b64encode(b"0" * 16).decode()})
    b.put_object("k", b"x", headers={"Content-MD5": oss2.utils.content_md5(b"x")})
    assert fake.get("k") is not None


def test_unsupported_operation_is_loud(fake: FakeOSS) -> None:
    b = make_bucket(fake, "v1")
    b.put_object("k", b"x")
    with pytest.raises(oe.NotImplemented):
        b.put_object_acl("k", oss2.OBJECT_ACL_PUBLIC_READ)
    with pytest.raises(oe.NotImplemented):
        b.get_bucket_info()


@VERSIONS
def test_crc_mismatch_detected_by_oss2(fake: FakeOSS, version: str) -> None:
    b = make_bucket(fake, version)
    fake.corrupt_crc = True
    with pytest.raises(oe.InconsistentError):
        b.put_object("k", b"payload")


# --------------------------------------------------------------------------- presigned URLs


@VERSIONS
@pytest.mark.parametrize("slash_safe", [False, True])
def test_sign_url_get_via_httpx(fake: FakeOSS, version: str, slash_safe: bool) -> None:
    b = make_bucket(fake, version)
    key = "gen/2024/a b+c 图.png"
    b.put_object(key, b"PNGDATA", headers={"Content-Type": "image/png"})
    url = b.sign_url("GET", key, 300, slash_safe=slash_safe)
    r = httpx.get(url, timeout=5)
    assert r.status_code == 200, r.text
    assert r.content == b"PNGDATA" and r.headers["content-type"] == "image/png"
    assert fake.requests[-1].auth_kind == f"{version}-query"

    tampered = url.replace(urlsplit(url).path, urlsplit(url).path.replace("a%20b", "a%20B"))
    r2 = httpx.get(tampered, timeout=5)
    assert r2.status_code == 403 and error_xml_of(r2)["Code"] == "SignatureDoesNotMatch"


@VERSIONS
def test_sign_url_with_response_override(fake: FakeOSS, version: str) -> None:
    b = make_bucket(fake, version)
    b.put_object("x.png", b"D", headers={"Content-Type": "image/png"})
    url = b.sign_url("GET", "x.png", 300, params={"response-content-disposition": "attachment; filename=x.png"})
    r = httpx.get(url, timeout=5)
    assert r.status_code == 200
    assert r.headers["content-disposition"] == "attachment; filename=x.png"


@VERSIONS
def test_sign_url_put(fake: FakeOSS, version: str) -> None:
    b = make_bucket(fake, version)
    url = b.sign_url("PUT", "up.png", 300, headers={"Content-Type": "image/png"})
    r = httpx.put(url, content=b"UP", headers={"Content-Type": "image/png"}, timeout=5)
    assert r.status_code == 200, r.text
    assert fake.get("up.png").content_type == "image/png"  # type: ignore[union-attr]
    r2 = httpx.put(url, content=b"UP", headers={"Content-Type": "image/jpeg"}, timeout=5)
    assert r2.status_code == 403 and error_xml_of(r2)["Code"] == "SignatureDoesNotMatch"


@VERSIONS
def test_sign_url_expired_negative(fake: FakeOSS, version: str) -> None:
    b = make_bucket(fake, version)
    b.put_object("k.png", b"x")
    r = httpx.get(b.sign_url("GET", "k.png", -60), timeout=5)
    assert r.status_code == 403
    d = error_xml_of(r)
    assert (d["Code"], d["Message"]) == ("AccessDenied", "Request has expired.")


@VERSIONS
def test_sign_url_expired_by_server_clock(fake: FakeOSS, version: str) -> None:
    b = make_bucket(fake, version)
    b.put_object("k.png", b"x")
    url = b.sign_url("GET", "k.png", 600)
    assert httpx.get(url, timeout=5).status_code == 200
    fake.clock = lambda: time.time() + 601 + 5
    r = httpx.get(url, timeout=5)
    assert r.status_code == 403 and error_xml_of(r)["Message"] == "Request has expired."
    if version == "v4":
        assert parse_qs(urlsplit(url).query)["x-oss-expires"] == ["600"]


# --------------------------------------------------------------------------- anonymous access


def test_anonymous_refused_on_private_bucket(fake: FakeOSS) -> None:
    make_bucket(fake, "v1").put_object("k.png", b"x")
    anon = make_bucket(fake, "anonymous")
    with pytest.raises(oe.AccessDenied):
        anon.get_object("k.png")
    assert fake.requests[-1].auth_kind == "anonymous"
    assert httpx.get(f"{fake.endpoint}/{BUCKET}/k.png", timeout=5).status_code == 403


def test_anonymous_read_on_public_bucket(public_fake: FakeOSS) -> None:
    make_bucket(public_fake, "v4").put_object("k.png", b"x", headers={"Content-Type": "image/png"})
    anon = make_bucket(public_fake, "anonymous")
    assert anon.get_object("k.png").read() == b"x"
    assert anon.object_exists("k.png")
    r = httpx.get(f"{public_fake.endpoint}/{BUCKET}/k.png", timeout=5)
    assert r.status_code == 200 and r.content == b"x"
    with pytest.raises(oe.AccessDenied):
        anon.put_object("k.png", b"overwrite")
    with pytest.raises(oe.AccessDenied):
        anon.delete_object("k.png")


# --------------------------------------------------------------------------- range, delete


@VERSIONS
def test_range_get(fake: FakeOSS, version: str) -> None:
    b = make_bucket(fake, version)
    b.put_object("r", b"0123456789")
    part = b.get_object("r", byte_range=(2, 5))
    assert part.status == 206 and part.read() == b"2345"
    assert part.headers["content-range"] == "bytes 2-5/10"
    assert b.get_object("r", byte_range=(7, None)).read() == b"789"
    assert b.get_object("r", byte_range=(None, 3)).read() == b"789"
    whole = b.get_object("r", byte_range=(50, 60))  # invalid: OSS returns the whole object
    assert whole.status == 200 and whole.read() == b"0123456789"


@VERSIONS
def test_delete(fake: FakeOSS, version: str) -> None:
    b = make_bucket(fake, version)
    b.put_object("d", b"x")
    assert b.delete_object("d").status == 204
    assert fake.get("d") is None
    assert b.delete_object("d").status == 204  # idempotent, like OSS


# --------------------------------------------------------------------------- listing


def _seed(fake: FakeOSS) -> list[str]:
    keys = ["a/1.png", "a/2.png", "a/3.png", "a/sub/4.png", "b/5.png", "b/6.png", "c.png", "a b/7.png"]
    for k in keys:
        fake.put_object(k, k.encode())
    return sorted(keys)


@VERSIONS
@pytest.mark.parametrize("iterator", [oss2.ObjectIterator, oss2.ObjectIteratorV2])
def test_list_paginates_in_order(fake: FakeOSS, version: str, iterator: type) -> None:
    keys = _seed(fake)
    b = make_bucket(fake, version)
    assert [o.key for o in iterator(b, max_keys=3)] == keys
    lists = [r for r in fake.requests if r.method == "GET" and not r.key]
    assert len(lists) == 3  # 3 + 3 + 2
    assert [o.key for o in iterator(b, prefix="a/", max_keys=2)] == ["a/1.png", "a/2.png", "a/3.png", "a/sub/4.png"]
    infos = list(iterator(b, prefix="b/"))
    assert [o.size for o in infos] == [7, 7] and all(o.etag and o.last_modified for o in infos)


@VERSIONS
@pytest.mark.parametrize("iterator", [oss2.ObjectIterator, oss2.ObjectIteratorV2])
def test_list_with_delimiter(fake: FakeOSS, version: str, iterator: type) -> None:
    _seed(fake)
    b = make_bucket(fake, version)
    for max_keys in (1, 2, 100):
        entries = list(iterator(b, delimiter="/", max_keys=max_keys))
        assert [(o.key, o.is_prefix()) for o in entries] == [
            ("a b/", True), ("a/", True), ("b/", True), ("c.png", False)]
    sub = list(iterator(b, prefix="a/", delimiter="/", max_keys=2))
    assert [o.key for o in sub] == ["a/1.png", "a/2.png", "a/3.png", "a/sub/"]


def test_list_raw_results(fake: FakeOSS) -> None:
    _seed(fake)
    b = make_bucket(fake, "v4")
    r1 = b.list_objects(prefix="a/", max_keys=2)
    assert r1.is_truncated and r1.next_marker == "a/2.png"
    assert [o.key for o in r1.object_list] == ["a/1.png", "a/2.png"]
    r2 = b.list_objects_v2(prefix="a/", max_keys=2, start_after="a/1.png")
    assert [o.key for o in r2.object_list] == ["a/2.png", "a/3.png"] and r2.is_truncated
    r3 = b.list_objects_v2(prefix="a/", max_keys=2, continuation_token=r2.next_continuation_token)
    assert [o.key for o in r3.object_list] == ["a/sub/4.png"] and not r3.is_truncated
    with pytest.raises(oe.InvalidArgument):
        b.list_objects(max_keys=5000)


def test_list_iterator_retries_5xx(fake: FakeOSS) -> None:
    _seed(fake)
    fake.inject(503, times=1, method="GET")
    b = make_bucket(fake, "v1")
    assert len(list(oss2.ObjectIterator(b))) == 8
    assert [r.status for r in fake.requests] == [503, 200]


# --------------------------------------------------------------------------- faults


@VERSIONS
def test_injected_503(fake: FakeOSS, version: str) -> None:
    b = make_bucket(fake, version)
    fake.inject(status=503, code="ServiceUnavailable", times=1, method="PUT")
    with pytest.raises(oe.NotFound):
        b.head_object("k")  # GET/HEAD untouched by a PUT-only fault
    with pytest.raises(oe.ServerError) as e:
        b.put_object("k", b"x")
    assert (e.value.status, e.value.code) == (503, "ServiceUnavailable")
    assert b.put_object("k", b"x").status == 200  # times=1: consumed
    assert len(fake.requests_for("PUT")) == 2  # oss2 never retried on its own


def test_injected_error_on_head_via_x_oss_err(fake: FakeOSS) -> None:
    b = make_bucket(fake, "v1")
    fake.inject(status=500, code="InternalError", times=2)
    with pytest.raises(oe.ServerError) as e:
        b.head_object("k")
    assert (e.value.status, e.value.code) == (500, "InternalError")
    with pytest.raises(oe.ServerError):
        b.object_exists("k")  # 5xx is re-raised, not "False"
    assert b.object_exists("k") is False


@VERSIONS
def test_injected_reset(fake: FakeOSS, version: str) -> None:
    b = make_bucket(fake, version)
    fake.inject_reset(times=1)
    with pytest.raises(oe.RequestError):
        b.put_object("k", b"x")
    assert fake.requests[-1].status is None
    assert b.put_object("k", b"x").status == 200
    assert b.get_object("k").read() == b"x"


def test_injected_reset_get(fake: FakeOSS) -> None:
    b = make_bucket(fake, "v4")
    b.put_object("k", b"x")
    fake.inject_reset(method="GET")
    with pytest.raises(oe.RequestError):
        b.get_object("k")
    assert b.get_object("k").read() == b"x"


def test_injected_delay_trips_client_timeout(fake: FakeOSS) -> None:
    b = make_bucket(fake, "v1", timeout=0.3)
    fake.inject_delay(30, times=1)
    t0 = time.monotonic()
    with pytest.raises(oe.RequestError):
        b.put_object("k", b"x")
    assert time.monotonic() - t0 < 10
    assert fake.get("k") is None
    assert b.put_object("k", b"x").status == 200


def test_down_mode(fake: FakeOSS) -> None:
    b = make_bucket(fake, "v4")
    b.put_object("k", b"x")
    fake.down = True
    for call in (lambda: b.put_object("k2", b"y"), lambda: b.get_object("k"), lambda: b.head_object("k")):
        with pytest.raises(oe.ServerError) as e:
            call()
        assert e.value.status == 503
    fake.down = False
    assert b.get_object("k").read() == b"x"


# --------------------------------------------------------------------------- waiting, request log


@pytest.mark.anyio
async def test_wait_until_from_async(fake: FakeOSS) -> None:
    b = make_bucket(fake, "v1")
    worker = threading.Thread(target=b.put_object, args=("w.png", b"x"), daemon=True)
    worker.start()
    await fake.wait_until(lambda: fake.get("w.png") is not None, timeout=5)
    worker.join(5)
    with pytest.raises(TimeoutError):
        await fake.wait_until(lambda: False, timeout=0.05)


@pytest.mark.anyio
async def test_oss2_from_worker_thread(fake: FakeOSS) -> None:
    b = make_bucket(fake, "v4")
    result = await anyio.to_thread.run_sync(b.put_object, "t.png", b"x")
    assert result.status == 200


def test_request_log(fake: FakeOSS) -> None:
    b = make_bucket(fake, "v1")
    b.put_object("log.png", b"x", headers={"X-OSS-Meta-Who": "me"})
    b.object_exists("log.png")
    put, head = fake.requests
    assert (put.method, put.key, put.bucket, put.body) == ("PUT", "log.png", BUCKET, b"x")
    assert put.headers["x-oss-meta-who"] == "me" and put.headers["authorization"].startswith("OSS test-ak:")
    assert (head.method, head.query) == ("HEAD", {"objectMeta": ""})

"""The temporary registry that image caching starts on loopback (any local user can reach it)
refuses unauthenticated and wrongly authenticated pushes and pulls; the random password lives
only in 0600 files of a 0700 directory and never on a command line. Runs the real registry
(Debian's docker-registry)."""
import base64
import json
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.request

import pytest

from ansible_collections.seal.cluster.plugins.module_utils._image_cache import TEMP_USER, TemporaryRegistry

REGISTRY = shutil.which("docker-registry") or shutil.which("docker-registry", path="/usr/bin:/usr/sbin")
pytestmark = pytest.mark.skipif(not REGISTRY, reason="docker-registry (Debian package) is not installed")


def status(url, method="GET", auth=None):
    request = urllib.request.Request(url, method=method, data=b"" if method != "GET" else None)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # nosec - loopback test registry
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def registry(tmp_path):
    storage = tmp_path / "registry"
    storage.mkdir()
    private = tempfile.mkdtemp(prefix="seal-cache-test-")
    try:
        with TemporaryRegistry(REGISTRY, str(storage), private) as reg:
            yield reg, storage, private
    finally:
        shutil.rmtree(private)


def test_an_unauthenticated_push_is_refused(registry):
    reg, storage, _private = registry
    push = "http://%s/v2/library/evil/blobs/uploads/" % reg.host
    assert status(push, "POST") == 401
    assert status(push, "POST", auth="%s:wrong" % TEMP_USER) == 401
    assert status("http://%s/v2/_catalog" % reg.host) == 401
    assert not (storage / "docker").exists()
    with open(reg.authfile, encoding="utf-8") as f:
        auth = base64.b64decode(json.load(f)["auths"][reg.host]["auth"]).decode()
    assert status(push, "POST", auth=auth) == 202
    assert (storage / "docker" / "registry" / "v2" / "repositories" / "library" / "evil").is_dir()


def test_the_password_stays_in_private_files_and_off_argv(registry):
    reg, _storage, private = registry
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o700
    for name in os.listdir(private):
        if name.endswith(".log"):
            continue
        assert stat.S_IMODE(os.stat(os.path.join(private, name)).st_mode) == 0o600, name
    with open("/proc/%d/cmdline" % reg.proc.pid, "rb") as f:
        argv = f.read().decode()
    assert reg.password not in argv and len(reg.password) >= 32
    with open(os.path.join(private, "htpasswd"), encoding="utf-8") as f:
        line = f.read()
    assert line.startswith(TEMP_USER + ":$2") and reg.password not in line

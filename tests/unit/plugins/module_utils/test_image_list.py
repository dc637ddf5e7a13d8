"""manifests/imageList is read by one rule, whether the cache fills it or describe reports it."""
from ansible_collections.seal.cluster.plugins.module_utils._image_cache import images_wanted
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import IMAGE_LIST, image_list_entries

TEXT = "# images\ndocker.io/library/nginx:1.25  # web\n\n  busybox:1.36\n#quay.io/x/y:1\n"


def test_entries_drop_comments_and_blank_lines():
    assert image_list_entries(TEXT) == [(2, "docker.io/library/nginx:1.25"), (4, "busybox:1.36")]


def test_the_cache_wants_what_the_list_names():
    wanted = images_wanted({IMAGE_LIST: TEXT})
    assert [(str(ref), where) for ref, where in wanted] == [
        ("docker.io/library/busybox:1.36", IMAGE_LIST + ":4"), ("docker.io/library/nginx:1.25", IMAGE_LIST + ":2")]

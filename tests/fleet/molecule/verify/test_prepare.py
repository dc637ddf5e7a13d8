"""What host preparation leaves on each host, seen from the host."""
import os

CLUSTER = os.environ.get("MOLECULE_SCENARIO_NAME", "default")


def test_data_directories(host):
    name = host.ansible.get_variables()["seal_cluster_name"]
    assert host.file("/var/lib/seal").is_directory
    cluster_dir = host.file("/var/lib/seal/" + name)
    assert cluster_dir.is_directory and cluster_dir.mode == 0o700
    assert host.file("/var/lib/rancher/k3s/agent/images").is_directory


def test_hosts_block_once_and_resolvable(host):
    hv = host.ansible.get_variables()
    aliases = hv.get("seal_host_aliases") or []
    content = host.file("/etc/hosts").content_string
    assert content.count("# BEGIN seal.cluster %s" % hv["seal_cluster_name"]) == (1 if aliases else 0)
    for alias in aliases:
        assert host.run("getent hosts %s" % alias["hostnames"][0]).stdout.split()[0] == alias["ip"]


def test_sysctls_running_and_persisted(host):
    assert host.sysctl("net.ipv4.ip_forward") == 1
    assert host.sysctl("net.bridge.bridge-nf-call-iptables") == 1
    persisted = host.file("/etc/sysctl.d/90-seal-k3s.conf")
    assert persisted.mode == 0o644 and "net.ipv4.ip_forward = 1" in persisted.content_string


def test_modules_persisted_for_boot(host):
    lines = host.file("/etc/modules-load.d/seal-k3s.conf").content_string.splitlines()
    assert [ln for ln in lines if not ln.startswith("#")] == ["overlay", "br_netfilter", "nf_conntrack"]

"""What the prepare role leaves on each host, seen from the host."""

BLOCK = "# BEGIN seal.cluster mdef\n10.254.0.10 harbor.local harbor\n# END seal.cluster mdef\n"


def test_data_directories(host):
    assert host.file("/var/lib/seal").is_directory
    cluster_dir = host.file("/var/lib/seal/mdef")
    assert cluster_dir.is_directory
    assert cluster_dir.mode == 0o700
    assert host.file("/var/lib/rancher/k3s/agent/images").is_directory
    assert host.file("/etc/rancher/k3s").is_directory


def test_hosts_block_once_and_resolvable(host):
    content = host.file("/etc/hosts").content_string
    assert content.count("# BEGIN seal.cluster mdef") == 1
    assert BLOCK in content
    assert host.run("getent hosts harbor.local").stdout.split()[0] == "10.254.0.10"


def test_sysctls_running_and_persisted(host):
    assert host.sysctl("net.ipv4.ip_forward") == 1
    assert host.sysctl("net.bridge.bridge-nf-call-iptables") == 1
    persisted = host.file("/etc/sysctl.d/90-seal-k3s.conf")
    assert persisted.mode == 0o644
    assert "net.ipv4.ip_forward = 1" in persisted.content_string


def test_modules_persisted_for_boot(host):
    lines = host.file("/etc/modules-load.d/seal-k3s.conf").content_string.splitlines()
    assert [ln for ln in lines if not ln.startswith("#")] == ["overlay", "br_netfilter", "nf_conntrack"]

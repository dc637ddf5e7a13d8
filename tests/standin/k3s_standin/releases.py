"""What depends on the k3s release, in one table: each entry gives the first release of every
minor line that has the behaviour (minor -> patch) and the minor from which every release has it.

Plain data and one lookup (`has`), so that tables of other behaviours can be merged in here.
Sources (k3s-io/k3s; the release that introduced each, from the backport issues):

- "disable-default-registry-endpoint": the flag (pkg/cli/cmds/agent.go
  DisableDefaultRegistryEndpointFlag, in the agent and the server flag lists), k3s #8975 with
  backports #9132 (v1.26.13), #9133 (v1.27.10), #9134 (v1.28.6), v1.29.1 (January 2024). An agent
  or server before it exits with "flag provided but not defined".
- "critical-config-names": pkg/cluster/bootstrap.go compareConfig names each mismatched field
  ("critical configuration mismatched: <cli tag>" warnings, then the error "critical configuration
  value mismatch between servers") and secrets-encryption became critical: k3s #6409, backports
  #6446 (v1.24.8) and v1.25.4 (validated on a v1.25.3+ commit in k3s #6448). Before it, the error
  is "critical configuration value mismatch" with the values only at debug level.

- "etcd-http-moved": k3s PR #8402 "Disable HTTP on main etcd client port" (pkg/etcd/etcd.go,
  listenClientHTTPURLs(): https://127.0.0.1:2382; executor.ETCDConfig ListenClientHTTPURLs), on
  master for v1.28.3 (tracking issue #8415 reproduced on v1.28.2+k3s1), backported to
  release-1.27 (#8427: v1.26.9/v1.27.6 still muxed -> v1.27.7), release-1.26 (#8428 -> v1.26.10)
  and release-1.25 (#8429 -> v1.25.15). From then on embedded etcd's client port 2379 serves
  gRPC only and etcd's HTTP/JSON gateway listens on https://127.0.0.1:2382.

- "helm-crd-schema": k3s-io/k3s#7310 "Register K3s CRDs with schema" (PR #7308, in v1.27.2: "Fixed
  an issue where Addon, HelmChart, and HelmChartConfig CRDs were created without structural
  schema"; the issue confirms the old behaviour on v1.27.1+k3s1), backported in the May 2023
  releases (#7497 for release-1.24, opened 2023-05-09; the 1.24/1.25/1.26 patch numbers below are
  those of that release train). Before it k3s pkg/server/context.go crds() registered HelmChart
  with no schema (crd.NamespacedTypes), and rancher/wrangler pkg/crd/init.go gave it a placeholder
  one (spec and status x-kubernetes-preserve-unknown-fields): no field of a HelmChart's spec was
  checked, pruned or defaulted. From it on, the schema is helm-controller's (pkg/crd/crds.go
  WithSchemaFromStruct(v1.HelmChart{}), later the controller-gen YAML of pkg/crds/yaml/generated/,
  which the stand-in vendors for every release with the behaviour).
  The helm-controller each release embeds: k3s go.mod at commit e74594aa (Kubernetes
  v1.27.2-k3s1, the first release with the schema) requires v0.15.0, at 00014d28 (main,
  Kubernetes v1.37.0-rc.1) v0.17.7; the release notes' "Embedded Component Versions" (made from
  go.mod) give v1.25.14 / v1.27.6 (Sep 2023) v0.15.4, v1.29.5 v0.15.9, v1.30.0 v0.16.1, v1.33.0
  v0.16.10, v1.36.0 v0.17.1 ("Bump helm-controller to v0.17.1", #13909).

`system-default-registry` is a server flag in every release (pkg/cli/cmds/server.go ServerFlags);
`k3s agent` never defines it (pkg/cli/cmds/agent.go).
"""
from __future__ import annotations

from . import util

# behaviour -> (first patch per minor, first minor where every release has it)
TABLE: dict[str, tuple[dict[int, int], int]] = {
    "disable-default-registry-endpoint": ({26: 13, 27: 10, 28: 6, 29: 1}, 30),
    "critical-config-names": ({24: 8, 25: 4}, 26),
    "etcd-http-moved": ({25: 15, 26: 10, 27: 7, 28: 3}, 29),
    "helm-crd-schema": ({24: 14, 25: 10, 26: 5, 27: 2}, 28),
}


def has(behaviour: str, version: str = util.VERSION) -> bool:
    """Whether the release `version` has `behaviour` (a key of TABLE)."""
    gates, floor = TABLE[behaviour]
    return util.at_least(gates, floor, version)


def etcd_http_moved(version: str = util.VERSION) -> bool:
    major, minor, _ = util.version_tuple(version)
    return major == 1 and minor >= 25 and has("etcd-http-moved", version)


def etcd_client_ports(version: str = util.VERSION) -> dict:
    """Where the embedded etcd answers what: {"grpc": port, "http": (host, port)}."""
    if etcd_http_moved(version):
        return {"grpc": 2379, "http": ("127.0.0.1", 2382)}
    return {"grpc": 2379, "http": None}  # HTTP and gRPC muxed on 2379

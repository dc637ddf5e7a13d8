"""The env template renderer against sealer's own test inputs and Go text/template's rules."""

import pytest

from ansible_collections.seal.cluster.plugins.module_utils import _go_template as gt

# sealer pkg/env/test/template/kubeadm.yaml.tmpl (sealer HEAD f4f89c58), rendered by
# pkg/env/env_test.go Test_processor_RenderAll with {PodCIDR: 100.64.0.0/10, SvcCIDR: 10.96.0.0/16};
# the expected text is pkg/env/test/template/kubeadm.yaml, the file that test writes (without the
# licence header a licence tool added to the committed copy).
KUBEADM_HEAD = (
    "apiVersion: kubeadm.k8s.io/v1beta3\n"
    "kind: ClusterConfiguration\n"
    "kubernetesVersion: v1.19.8\n"
    'controlPlaneEndpoint: "apiserver.cluster.local:6443"\n'
    "imageRepository: sea.hub:5000/library\n"
    "networking:\n")
KUBEADM_TMPL = KUBEADM_HEAD + (
    "  podSubnet: {{ .PodCIDR }}\n"
    "  serviceSubnet: {{ .SvcCIDR }}")
KUBEADM_YAML = KUBEADM_HEAD + (
    "  podSubnet: 100.64.0.0/10\n"
    "  serviceSubnet: 10.96.0.0/16")

# sealer v0.8.7 pkg/env/test/template/test.yaml.tmpl, rendered by pkg/env/env_test.go for host
# 192.168.0.2 of getTestCluster(): the host env {key: [bar, foo], foo: bar, IP: 127.0.0.2} overrides
# the cluster's {IP: 127.0.0.1, key: value} (mergeList). Expected: what Go's text/template prints.
TEST_TMPL = '{{ .foo }}\n{{ .IP }}\n{{b64enc "qwertyuiop"}}\n{{b64dec "cXdlcnR5dWlvcA=="}}\n{{b64enc .IP}}\n{{b64enc .foo}}'
TEST_ENV = {"key": ["bar", "foo"], "foo": "bar", "IP": "127.0.0.2"}
TEST_OUT = "bar\n127.0.0.2\ncXdlcnR5dWlvcA==\nqwertyuiop\nMTI3LjAuMC4y\nYmFy"


def test_sealer_kubeadm_template_renders_identically():
    assert gt.render(KUBEADM_TMPL, {"PodCIDR": "100.64.0.0/10", "SvcCIDR": "10.96.0.0/16"}) == KUBEADM_YAML


def test_sealer_v087_test_template_renders_as_go_does():
    assert gt.render(TEST_TMPL, TEST_ENV) == TEST_OUT


@pytest.mark.parametrize("source,env,out", [
    ("a  {{- .A -}}  b", {"A": "1"}, "a1b"),
    ("a {{ .A }} b", {"A": "1"}, "a 1 b"),
    ("{{/* a comment */}}x{{- /* trimmed */ -}} y", {}, "xy"),
    ("{{ .L }}", {"L": ["p", "q"]}, "[p q]"),
    ("{{ range .L }}<{{ . }}>{{ end }}", {"L": ["p", "q"]}, "<p><q>"),
    ("{{ range .Missing }}x{{ else }}none{{ end }}", {}, "none"),
    ("{{ if .A }}yes{{ else }}no{{ end }}", {"A": ""}, "no"),
    ("{{ if .X }}x{{ else if .A }}a{{ else }}z{{ end }}", {"A": "1"}, "a"),
    ("{{ .A | b64enc | b64dec }}", {"A": "v"}, "v"),
    ('{{ "q\\"\\n" }}', {}, 'q"\n'),
    ("{{ `raw {{ x }}` }}", {}, "raw {{ x }}"),
    ("{{ b64dec \"***\" }}", {}, "illegal base64 data at input byte 0"),
    ("no actions at all {", {}, "no actions at all {"),
])
def test_supported_constructs(source, env, out):
    assert gt.render(source, env) == out


@pytest.mark.parametrize("source,message", [
    ("x\n{{ printf \"%s\" .A }}", "f.tmpl:2: unsupported template construct 'printf'"),
    ("{{ $x := .A }}", "f.tmpl:1: unsupported template construct"),
    ("{{ .A.B }}", "unsupported template construct '.A.B'"),
    ("{{ template \"x\" }}", "unsupported template construct"),
    ("{{ define \"x\" }}{{ end }}", "unsupported template construct"),
    ("{{ with .A }}{{ end }}", "unsupported template construct"),
    ("{{ (.A) }}", "unsupported template construct"),
    ("{{ index .L 0 }}", "unsupported template construct 'index'"),
    ("{{ 3 }}", "unsupported template construct '3'"),
    ("\n\n{{ if .A }}open", "f.tmpl:3: {{ if }} has no {{ end }}"),
    ("{{ end }}", "unexpected {{ end }}"),
    ("{{ .A", "unclosed action"),
    ("{{ .Missing }}", "f.tmpl:1: the env has no key Missing"),
    ("{{ b64enc .L }}", "b64enc needs a string"),
    ("{{ range .A }}{{ end }}", "range can't iterate over"),
    ("{{ b64enc }}", "b64enc takes one argument"),
])
def test_unsupported_constructs_are_refused_with_file_and_line(source, message):
    with pytest.raises(gt.TemplateError) as exc:
        gt.render(source, {"A": "1", "L": ["a"]}, "f.tmpl")
    assert message in str(exc.value)

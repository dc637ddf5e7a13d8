#!/usr/bin/env bash
# Bring a fresh Debian/Ubuntu machine to where `make test` and the playbooks run:
# system packages (podman, debootstrap, registry, etcd, ...; the controller's own needs are in
# bindep.txt), the pinned Python venv in .venv (requirements-dev.txt, which includes the
# collection's requirements.txt),
# and the collection linked where Ansible and Python find it as ansible_collections.seal.cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  podman runc netavark aardvark-dns slirp4netns uidmap fuse-overlayfs iptables
  debootstrap openssh-client sshpass skopeo docker-registry etcd-server etcd-client
  make rsync git python3-venv python3-dev gcc zstd openssl ca-certificates tmux
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Fleet nodes are systemd containers, and `make test` runs several fleets at once: systemd in
# each node takes inotify instances, counted against root's host-wide limit (often 128 or 1024;
# when it runs out, nodes stall at boot). Raise it, and the watch limit, where they are lower.
raise_sysctl() {
  local key=$1 want=$2 path=/proc/sys/${1//.//}
  [ -r "$path" ] || return 0
  if [ "$(cat "$path")" -lt "$want" ]; then
    if [ -w "$path" ]; then echo "$want" > "$path" && echo "setup: $key raised to $want"
    else echo "setup: $key is $(cat "$path") (< $want) and not writable here: many fleets at once may stall" >&2; fi
  fi
}
raise_sysctl fs.inotify.max_user_instances 8192
raise_sysctl fs.inotify.max_user_watches 524288

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
# requirements.txt: the collection's runtime pins; requirements-dev.txt: the tooling (-r the former)
want=$(cat requirements.txt requirements-dev.txt pyproject.toml 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements-dev.txt
  if grep -q "^\[project\]" pyproject.toml 2>/dev/null; then
    .venv/bin/pip install -q --no-deps -e .
  fi
  echo "$want" > "$stamp"
fi

# ansible-test sanity installs its own pinned linters; they live in a venv of their own.
if [ ! -x .cache/sanity-venv/bin/ansible-test ]; then
  "$PY" -m venv .cache/sanity-venv
  core=$(grep -i '^ansible-core==' requirements-dev.txt)
  .cache/sanity-venv/bin/pip install -q "$core"
fi

pip_boot=$(.cache/sanity-venv/bin/python - <<'PY'
import ansible_test._internal.python_requirements as r, inspect, re
print(re.search(r"pip='([0-9.]+)'", inspect.getsource(r)).group(1).replace(".", "_"))
PY
)
mkdir -p ~/.ansible/test/cache
cp scripts/get_pip_offline.py ~/.ansible/test/cache/get_pip_"$pip_boot".py

# ansible_collections/seal/cluster -> this checkout (Ansible's collections_path and pytest use it)
mkdir -p .cache/collections/ansible_collections/seal
ln -sfn ../../../.. .cache/collections/ansible_collections/seal/cluster
echo "setup: ready (.venv, .cache/collections/ansible_collections/seal/cluster)"

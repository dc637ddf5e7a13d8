# seal.cluster — test targets. `make setup` once, then `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
# The project's ansible.cfg (host key checking on) for what users run; the test targets use
# tests/ansible.cfg, the same with host key checking off for the throw-away test fleet.
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
TEST_ANSIBLE_CONFIG := $(CURDIR)/tests/ansible.cfg
unit integration molecule fleet: export ANSIBLE_CONFIG := $(TEST_ANSIBLE_CONFIG)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections
SANITY_DIR := $(CURDIR)/.cache/sanity/ansible_collections/seal/cluster
# ansible-test installs its own pinned linters: keep them out of .venv (made by scripts/setup.sh)
SANITY_VENV := $(CURDIR)/.cache/sanity-venv
# Test tooling that is not part of the collection (build_ignore'd) and not in ansible-test's layout
NOT_SHIPPED := tests/fleet tests/standin tests/integration tests/molecule tests/benchmarks tests/ansible.cfg molecule scripts .ci \
  requirements-dev.txt
PYTHON_VERSION := $(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
# Fleet test groups (an integration module, a Molecule scenario) run SEAL_TEST_JOBS at a time,
# each on a pytest-xdist worker of its own (tests/conftest.py); default from cores and memory.
JOBS = $(or $(SEAL_TEST_JOBS),$(shell $(BIN)/python scripts/suite.py jobs))
XDIST = -n $(JOBS) --dist loadgroup --no-loadscope-reorder

.PHONY: setup test unit lint sanity molecule integration fleet faults build clean fleet-up fleet-down demo demo-down

setup:
	scripts/setup.sh

## The whole suite: what CI runs. unit, lint and sanity one after another beside the fleet tests
## (integration modules and Molecule scenarios side by side); logs in .cache/suite/, a table at the end.
test:
	$(BIN)/python scripts/suite.py

unit:
	scripts/pytest.sh tests/unit

integration:
	scripts/pytest.sh tests/integration $(XDIST)

## integration and molecule in one pool of workers (what `make test` runs)
fleet:
	scripts/pytest.sh tests/integration tests/molecule $(XDIST)

## The fault-injection suite alone (it is also one group of `make test`'s fleet lane; one 3 master + 1 node
## fleet, docs/fault-injection.md): SEAL_FAULTS_SEED=N replays a run's random kill point,
## SEAL_FAULTS_EXTRA=N adds N random run.yml kill points.
faults: export ANSIBLE_CONFIG := $(TEST_ANSIBLE_CONFIG)
faults:
	scripts/pytest.sh tests/integration/faults

lint:
	ansible-lint --profile production

sanity:
	rm -rf $(SANITY_DIR) && mkdir -p $(SANITY_DIR)
	git ls-files -co --exclude-standard -z -- . $(addprefix ':!:',$(NOT_SHIPPED)) | rsync -a --from0 --files-from=- ./ $(SANITY_DIR)/
	cd $(SANITY_DIR) && git init -q && git add -A && \
	  $(SANITY_VENV)/bin/ansible-test sanity --requirements --python $(PYTHON_VERSION) --color no

## every scenario: molecule test, its verify ran passing tests, no fleet.yml password in its output
## (tests/molecule; each scenario's output in .cache/molecule-<scenario>.log)
molecule:
	scripts/pytest.sh tests/molecule $(XDIST)

build:
	ansible-galaxy collection build --force

## The main job on a local fleet: 1 master + 2 nodes from a Clusterfile, k3s from a cluster image,
## with the bare command. The demo's inventory goes where ansible.cfg's inventory points
## (inventories/default/Clusterfile, git-ignored, marked as the demo's; a user's own file there is
## never overwritten), with group_vars pointing ssh at the fleet's known host keys and the image
## store at the demo's.
DEMO_STORE := $(CURDIR)/.cache/images
demo: setup
	$(BIN)/python tests/fleet/demo_inventory.py check
	$(BIN)/python tests/fleet/fleet.py up --name demo --masters 1 --nodes 2
	$(BIN)/python tests/fleet/demo_inventory.py write --name demo --store $(DEMO_STORE)
	$(BIN)/python tests/standin/build_image.py --version v1.25.3+k3s1 --store $(DEMO_STORE)
	ansible-playbook playbooks/run.yml -e image=k3s:v1.25.3
	@echo "kubeconfig: ~/.seal/demo/kubeconfig; run it again: ansible-playbook playbooks/run.yml -e image=k3s:v1.25.3"
	@echo "remove the fleet and its inventory with: make demo-down"

demo-down:
	$(BIN)/python tests/fleet/fleet.py down --name demo
	$(BIN)/python tests/fleet/demo_inventory.py remove

fleet-up:
	$(BIN)/python tests/fleet/fleet.py up --name dev --masters 1 --nodes 2

fleet-down:
	$(BIN)/python tests/fleet/fleet.py down --name dev

clean:
	rm -rf .cache/sanity .cache/suite .pytest_cache seal-cluster-*.tar.gz

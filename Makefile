# fieldgate: the two commands a user needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Chart.js and its plugins for `make bench`'s chart comparison (package-lock.json pins them).
# The site's own chart library is vendored in web/static/vendor/: setting up needs no Node.js.
NODE_STAMP := node_modules/.installed
# Debian packages the project needs at run or test time.
DEBS := socat strace chromium redis-server postgresql
# promtool checks the shipped alert rules, node_exporter reads `gateway metrics --textfile`.
DEBS += prometheus prometheus-node-exporter
# systemd/, ansible/ and the image: root file systems, systemd in a container, arm64 emulation,
# a partitioned image without loop devices.
DEBS += mmdebstrap systemd-container qemu-user-static dosfstools mtools e2fsprogs fdisk
# The power-cut harness (tests/powercut/): libfuse 3 and fusermount3 for its LazyFS-like layer.
DEBS += fuse3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup debs demo demo-fleet test unit integration lint bench clean image image-test hil soak \
	crash powercut constraints

setup: debs $(STAMP)

debs:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "fieldgate needs Python >= 3.11"; exit 1; }
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@# constraints.txt pins the run-time dependencies to the versions the tests ran with.
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	@# NodeSource's nodejs brings its own npm; Debian's nodejs needs the npm package.
	command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# After changing dependencies: install them, then pin what the venv now holds (docs/deploy.md).
constraints:
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python -m tests.support.constraints --write

demo: setup
	$(BIN)/python -m gateway.commands.demo $(if $(FLEET),--fleet)

# A central site (its own PostgreSQL and Redis) with three simulated gateways of different kinds.
demo-fleet: setup
	$(BIN)/python -m gateway.commands.demo_fleet

# The suite, then the HIL suite against the simulator (docs/hil.md), so it is checked too.
test: setup
	$(BIN)/pytest --durations=15 tests firmware-sim/tests
	$(BIN)/pytest hil/

unit: setup
	$(BIN)/pytest -m unit tests firmware-sim/tests

integration: setup
	$(BIN)/pytest -m integration tests firmware-sim/tests

lint: setup
	$(BIN)/ruff check gateway firmware-sim tests hil bench web
	$(BIN)/ruff format --check gateway firmware-sim tests hil bench web
	cd ansible && ../$(BIN)/yamllint -s . && PATH=$(CURDIR)/$(BIN):$$PATH ../$(BIN)/ansible-lint -q
	$(BIN)/python -m tests.support.units --check systemd

# A flashable arm64 Raspberry Pi image (docs/deploy.md): build/fieldgate-rpi-arm64.img.
image: setup
	image/build-image build/fieldgate-rpi-arm64

build/fieldgate-rpi-arm64.img:
	$(MAKE) image

# The built image booted as two cards under qemu-system-aarch64 and checked over SSH
# (docs/deploy.md, "The image under emulation"). Not part of `make test`: building the image
# takes most of an hour here, booting each card a few minutes.
IMAGE_TEST_DEBS := qemu-system-arm openssh-client socat
image-test: setup build/fieldgate-rpi-arm64.img
	@missing=$$(for p in $(IMAGE_TEST_DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	$(BIN)/python image/test-image build/fieldgate-rpi-arm64.img

bench: setup $(NODE_STAMP)
	$(BIN)/python -m bench

# End to end against a monitor (docs/hil.md): firmware-sim by default; on a real device e.g.
# make hil HIL_ARGS="--monitor=/dev/ttyUSB0 --baud=115200 --gateway-env=/etc/fieldgate/gateway.env"
hil: setup
	$(BIN)/pytest hil/ $(HIL_ARGS)

# Long campaigns (docs/soak.md); `make test` runs both at CI length (tests/soak/).
DURATION ?= 10m
N ?= 50
soak: setup
	$(BIN)/python -m tests.soak soak --duration $(DURATION)

crash: setup
	$(BIN)/python -m tests.soak crash --kills $(N)

# Real power cuts (docs/soak.md): the data dir on a FUSE layer that drops what was not fsynced;
# `make test` runs a few (tests/powercut/test_campaign.py).
powercut: setup
	$(BIN)/python -m tests.powercut --cuts $(N)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# Two commands do everything on a fresh Debian machine:
#   make demo   install what is missing, build topologies/two-nats.yml, show UDP reachability, tear down
#   make test   install what is missing and run the whole test suite
# (`npm ci` and every target here compile the CLI into dist/: about 0.3 s, and about 6 s more when the
# library's type declarations in dist/types/ must be written anew after a source changed)
SHELL := /bin/bash
TESTBED := ./bin/testbed.js
SYSTEM_PACKAGES := iproute2 nftables iptables conntrack procps util-linux tcpdump iputils-ping librsvg2-bin python3 miniupnpd-nftables
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages test-packages node-packages demo test bench soak clean-labs

setup: system-packages node-packages

system-packages:
	@missing=""; \
	for tool in ip:iproute2 nft:nftables iptables:iptables conntrack:conntrack sysctl:procps nsenter:util-linux setpriv:util-linux tcpdump:tcpdump ping:iputils-ping rsvg-convert:librsvg2-bin python3:python3 miniupnpd:miniupnpd-nftables; do \
		command -v $${tool%%:*} >/dev/null 2>&1 || [ -x /usr/sbin/$${tool%%:*} ] || missing="$$missing $${tool##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The test suite also checks the HTML report in a real browser (Debian's chromium), and runs the
# examples' programs: coturn (a STUN server) and netcat (the lecture's `nc -l -p 8000`), and the
# port-mapping clients miniupnpc (`upnpc`) and natpmpc against the NATs' miniupnpd.
test-packages:
	@missing=""; \
	for tool in chromium:chromium turnserver:coturn nc:netcat-openbsd upnpc:miniupnpc natpmpc:natpmpc; do \
		command -v $${tool%%:*} >/dev/null 2>&1 || missing="$$missing $${tool##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

node-packages: node_modules/.package-lock.json
	@node scripts/build.js --quiet

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

demo: setup
	$(SUDO) $(TESTBED) up topologies/two-nats.yml
	@trap '$(SUDO) $(TESTBED) down two-nats' EXIT; $(SUDO) $(TESTBED) reach two-nats

test: setup test-packages
	$(SUDO) node scripts/run-tests.js

bench: setup
	$(SUDO) npm run bench

soak: setup
	$(SUDO) npm run soak

# Remove every lab testbed created on this host (from its ledger; nothing else is touched).
clean-labs:
	$(SUDO) $(TESTBED) down --all

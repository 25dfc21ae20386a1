# The two commands of the README: `make run` serves everything on http://127.0.0.1:3000,
# `make test` runs every test (CI runs it through .ci/run).

CLIENT_SOURCES := $(shell find client/src client/public -type f 2>/dev/null) client/index.html client/package.json client/package-lock.json client/vite.config.js client/svelte.config.js

.PHONY: run test client

run: client/dist/index.html
	cargo run --release -- serve

client: client/dist/index.html

client/dist/index.html: $(wildcard $(CLIENT_SOURCES))
	cd client && npm ci --no-audit --no-fund && npm run build

test:
	bash .ci/test-rust
	bash .ci/test-client
	bash .ci/test-infra

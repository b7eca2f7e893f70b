# ComfyUI-LumosX developer commands.
#   make host   build the test host (.venv + .host/ComfyUI), idempotent
#   make test   build the host if needed, then run the whole test suite
#   make serve  start the test host headless with this pack on 127.0.0.1:8188
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: host test serve clean-host

host:
	@bash scripts/build_host.sh

test: host
	$(PY) -m pytest -p no:cacheprovider tests $(PYTEST_ARGS)

serve: host
	cd .host/ComfyUI && ../../$(PY) main.py --cpu --listen 127.0.0.1 --port 8188 --disable-api-nodes

clean-host:
	rm -rf .venv .host

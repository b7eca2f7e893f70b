# ComfyUI-LumosX developer commands.
#   make host   build the test host (.venv + .host/ComfyUI), idempotent
#   make test   build the host if needed, then run the whole test suite
#   make serve  start the test host headless with this pack on 127.0.0.1:8188
#   make demo   build the host if needed, run the shipped subject-consistent workflow through
#               the API with the lumosx CLI; video + binding preview in output/
#   make workflows / make screenshots   rebuild workflows/*.json / docs/*.png in the real app
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: host test serve clean-host demo workflows screenshots

host:
	@bash scripts/build_host.sh

test: host
	$(PY) -P -m pytest -p no:cacheprovider tests $(PYTEST_ARGS)

serve: host
	cd .host/ComfyUI && ../../$(PY) main.py --cpu --listen 127.0.0.1 --port 8188 --disable-api-nodes

clean-host:
	rm -rf .venv .host

demo: host
	$(PY) scripts/demo.py

workflows: host
	$(PY) scripts/make_workflows.py

screenshots: host
	$(PY) scripts/screenshot_workflows.py

# ComfyUI-LumosX developer commands.
#   make host   build the test hosts (.host/<version>/{ComfyUI,venv}: ComfyUI 0.33.0 when
#               ../shared/hosts has it, and 0.3.75; the newest also gets the newest ComfyUI
#               frontend), idempotent; fails when it cannot provide Chromium for the browser
#               tests unless LUMOSX_NO_BROWSER=1 (docs/development-browser.md)
#   make test   build the hosts if needed, run the whole suite on the newest one and the
#               host_matrix tests (server, shipped workflows end to end, CLI, browser) on the
#               other (scripts/run_tests.py); the browser tests run with each host's pinned
#               frontend and, on the newest host, with the newest frontend too
#   make test COMFYUI=~/ComfyUI   the whole suite on YOUR ComfyUI folder instead (a test venv
#               that sees its packages; nothing is installed into your Python)
#   make test-fast  the fast tier on the newest built host (core math + every node in-process;
#               no server, browser or subprocess): the edit-run loop
#   make serve  start ComfyUI headless with this pack on 127.0.0.1:8188
#   make demo   build the host if needed, run the shipped subject-consistent workflow through
#               the API with the lumosx CLI; video + binding preview in output/
#   make workflows / make screenshots   rebuild workflows/*.json / docs/*.png in the real app
# Where the hosts live is decided by lumosx_core/cli/host.py; `HOST_PY` asks it.
PYTHON ?= python3.11
COMFYUI ?=
PYTEST_ARGS ?=
OWN := $(if $(COMFYUI),--comfyui "$(COMFYUI)")
HOST_ENV := $(if $(COMFYUI),LUMOSX_COMFYUI="$(COMFYUI)")
HOST_PY = $(shell $(PYTHON) -I lumosx_core/cli/host.py python $(if $(COMFYUI),"$(COMFYUI)"))

.PHONY: host test test-fast serve clean-host demo workflows screenshots

host:
	@bash scripts/build_host.sh $(OWN)

test:
	@$(PYTHON) scripts/run_tests.py $(OWN) -- $(PYTEST_ARGS)

test-fast:
	@$(PYTHON) scripts/run_tests.py $(OWN) --only-newest -- -m fast $(PYTEST_ARGS)

serve: host
	$(HOST_PY) -m lumosx_core.cli serve $(OWN) --port 8188 -- --disable-api-nodes

clean-host:
	rm -rf .host .venv

demo: host
	$(HOST_ENV) $(HOST_PY) scripts/demo.py

# made on the oldest host: newer frontends load older saves (the host_matrix tests check both)
workflows: host
	$(HOST_ENV) $(if $(COMFYUI),$(HOST_PY),$(shell $(PYTHON) -I lumosx_core/cli/host.py python --oldest)) scripts/make_workflows.py

# also on the oldest host: 0.33's frontend frames a workflow whose model files are absent with an
# error panel
screenshots: host
	$(HOST_ENV) $(if $(COMFYUI),$(HOST_PY),$(shell $(PYTHON) -I lumosx_core/cli/host.py python --oldest)) scripts/screenshot_workflows.py

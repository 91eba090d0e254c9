# The container image, built and run for real (docs/kubernetes.md, "The image, built and run").
#
#   make base-image   the local Python base: debootstrap bookworm (minbase + Debian's python3.11)
#                     imported as $(BASE_IMAGE); rebuilt only when scripts/base-image.sh or its
#                     settings change (the tag carries their hash)
#   make image        build ./Dockerfile as $(IMAGE):$(IMAGE_TAG) with podman or docker, on
#                     PYTHON_IMAGE: by default the registry's python image where it can be had,
#                     else the local base
#   make image-test   build the image, then run tests/image against it as Kubernetes runs it
#                     (read-only, non-root, no capabilities); part of `make all`
#
# Settings: CONTAINER_ENGINE=podman|docker (default: the first that answers), PYTHON_IMAGE=
# (`local` for the debootstrap base, or any image), IMAGE_CA_BUNDLE (mounted over the build's
# CA bundle, podman only, so pip trusts what the host trusts), IMAGE_WHEELHOUSE (host directory
# mounted as the build's /wheelhouse, podman only: wheels are fetched once, hash-checked on use).

IMAGE ?= ml-service
IMAGE_TAG ?= local
REGISTRY_PYTHON_IMAGE := $(shell sed -n 's/^ARG PYTHON_IMAGE=//p' Dockerfile)
PYTHON_IMAGE ?= auto
BASE_SUITE ?= bookworm
BASE_MIRROR ?= http://deb.debian.org/debian
BASE_IMAGE_REPO ?= localhost/ml-service-base
BASE_IMAGE_KEY = $(shell { cat scripts/base-image.sh; echo "$(BASE_SUITE) $(BASE_MIRROR)"; } | sha256sum | cut -c1-12)
BASE_IMAGE = $(BASE_IMAGE_REPO):$(BASE_SUITE)-$(BASE_IMAGE_KEY)
IMAGE_CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
IMAGE_WHEELHOUSE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ml-service/image-wheels

# The first engine that answers, looked up once and only by the targets that use it.
CONTAINER_ENGINE ?= $(eval CONTAINER_ENGINE := $(shell for e in podman docker; do $$e info >/dev/null 2>&1 && { echo $$e; break; }; done))$(CONTAINER_ENGINE)
# podman: runc rather than crun (crun cannot set up this kernel's hybrid cgroups), the docker
# image format (the OCI format drops HEALTHCHECK), and the host's CA bundle and a wheelhouse
# mounted into every RUN step. docker builds the Dockerfile as it is.
podman_runtime = $(if $(shell command -v runc),--runtime runc)
image_build_flags = $(if $(filter podman,$(CONTAINER_ENGINE)),$(podman_runtime) --format docker \
	$(if $(wildcard $(IMAGE_CA_BUNDLE)),--volume $(IMAGE_CA_BUNDLE):/etc/ssl/certs/ca-certificates.crt:ro) \
	--volume $(IMAGE_WHEELHOUSE):/wheelhouse)

.PHONY: base-image image image-test container-engine

container-engine:
	@test -n "$(CONTAINER_ENGINE)" || { echo "make image: no container engine answers (podman info, docker info); install podman (apt-get install podman runc), or build in Azure with 'make acr-build'" >&2; exit 1; }

base-image: container-engine ## Build the local Python base image (debootstrap bookworm) unless it exists
	@if $(CONTAINER_ENGINE) image inspect $(BASE_IMAGE) >/dev/null 2>&1; then \
		echo "base-image: $(BASE_IMAGE) exists"; \
	else \
		ENGINE=$(CONTAINER_ENGINE) BASE_SUITE=$(BASE_SUITE) BASE_MIRROR=$(BASE_MIRROR) bash scripts/base-image.sh $(BASE_IMAGE); \
		for old in $$($(CONTAINER_ENGINE) images --format '{{.Repository}}:{{.Tag}}' | grep '^$(BASE_IMAGE_REPO):$(BASE_SUITE)-' | grep -vx '$(BASE_IMAGE)'); do \
			$(CONTAINER_ENGINE) rmi "$$old" >/dev/null 2>&1 || true; \
		done; \
	fi
	@$(CONTAINER_ENGINE) tag $(BASE_IMAGE) $(BASE_IMAGE_REPO):$(BASE_SUITE)

image: container-engine ## Build the image with podman or docker (IMAGE=ml-service IMAGE_TAG=local PYTHON_IMAGE=auto|local|...)
	@base='$(PYTHON_IMAGE)'; \
	if [ "$$base" = auto ]; then \
		if $(CONTAINER_ENGINE) image inspect $(REGISTRY_PYTHON_IMAGE) >/dev/null 2>&1 \
			|| $(CONTAINER_ENGINE) pull $(REGISTRY_PYTHON_IMAGE) >/dev/null 2>&1; then \
			base=$(REGISTRY_PYTHON_IMAGE); \
		else \
			echo "image: $(REGISTRY_PYTHON_IMAGE) cannot be pulled; building on the local base"; base=local; \
		fi; \
	fi; \
	if [ "$$base" = local ]; then $(MAKE) --no-print-directory base-image; base=$(BASE_IMAGE); fi; \
	mkdir -p $(IMAGE_WHEELHOUSE); \
	echo "image: $(CONTAINER_ENGINE) build of $(IMAGE):$(IMAGE_TAG) on $$base"; \
	started=$$SECONDS; \
	$(CONTAINER_ENGINE) build $(image_build_flags) --build-arg PYTHON_IMAGE=$$base --tag $(IMAGE):$(IMAGE_TAG) . ; \
	echo "image: built $(IMAGE):$(IMAGE_TAG) in $$((SECONDS - started)) s, $$($(CONTAINER_ENGINE) image inspect --format '{{.Size}}' $(IMAGE):$(IMAGE_TAG) | awk '{printf "%.0f MB", $$1 / 1e6}')"

image-test: $(STAMP) image ## Run the image as Kubernetes does and check it (tests/image)
	ML_SERVICE_IMAGE=$(IMAGE):$(IMAGE_TAG) CONTAINER_ENGINE=$(CONTAINER_ENGINE) \
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/image

# QEMU cluster targets (qemu-tests/): included by the top Makefile. Root; see
# qemu-tests/README.md. The cluster image (configs/cluster-image.yaml) is built into
# build/cluster/image-out and rebuilt only when one of its inputs changed.
DEB_PACKAGES += dnsmasq-base openssh-client socat jq qemu-system-x86 qemu-utils umoci skopeo busybox-static

CLUSTER_BUILD := build/cluster
CLUSTER_OUT := $(CLUSTER_BUILD)/image-out
CLUSTER_QCOW2 := $(CLUSTER_OUT)/rainboot-cluster.qcow2
CLUSTER_ISO := $(CLUSTER_BUILD)/image-out-iso/rainboot-cluster.iso
CLUSTER_BUNDLE := $(CLUSTER_BUILD)/bundle/manifest.json
CLUSTER_OVERLAY := $(CLUSTER_BUILD)/overlay
CLUSTER_INPUTS := $(wildcard firstboot/*.c firstboot/*.h imagebuild/*.c imagebuild/*.h) \
	$(shell find overlays/rootfs overlays/cluster-vm -type f 2>/dev/null) configs/default.yaml
N ?= 3
INSTALL ?= qcow2
CLUSTER_IMAGE := $(if $(filter iso,$(INSTALL)),$(CLUSTER_ISO),$(CLUSTER_QCOW2))

.PHONY: cluster cluster-down cluster-image e2e bench-cluster

# The image's own release build, whatever BUILD this make was given; inside that sub-make
# (BUILD=$(CLUSTER_BUILD)) the ordinary rules of the Makefile and imagebuild.mk apply.
ifneq ($(BUILD),$(CLUSTER_BUILD))
$(CLUSTER_BUILD)/imagebuild $(CLUSTER_BUILD)/firstboot: $(CLUSTER_INPUTS)
	$(MAKE) --no-print-directory BUILD=$(CLUSTER_BUILD) SANITIZE=0 \
		$(CLUSTER_BUILD)/firstboot $(CLUSTER_BUILD)/imagebuild
endif

$(CLUSTER_BUNDLE): qemu-tests/make-bundle.sh | $(CLUSTER_BUILD)/imagebuild
	qemu-tests/make-bundle.sh $(CLUSTER_BUILD)/imagebuild $(CLUSTER_BUILD)/bundle

# The cluster images' overlays: the image's own (overlays/rootfs) with the VM profile
# (overlays/cluster-vm: a small initramfs) on top. A stamp beside it: everything inside the
# directory lands in the image.
$(CLUSTER_OVERLAY).stamp: $(shell find overlays/rootfs overlays/cluster-vm -type f 2>/dev/null)
	rm -rf $(CLUSTER_OVERLAY)
	mkdir -p $(CLUSTER_OVERLAY)
	cp -rT --preserve=mode,timestamps overlays/rootfs $(CLUSTER_OVERLAY)
	cp -rT --preserve=mode,timestamps overlays/cluster-vm $(CLUSTER_OVERLAY)
	@touch $@

$(CLUSTER_QCOW2): $(CLUSTER_INPUTS) configs/cluster-image.yaml $(CLUSTER_BUNDLE) \
		$(CLUSTER_OVERLAY).stamp $(CLUSTER_BUILD)/imagebuild $(CLUSTER_BUILD)/firstboot
	$(CLUSTER_BUILD)/imagebuild build --firstboot $(CLUSTER_BUILD)/firstboot \
		configs/cluster-image.yaml -o $(CLUSTER_OUT)
	@touch $@

$(CLUSTER_ISO): $(CLUSTER_INPUTS) configs/cluster-image-iso.yaml $(CLUSTER_BUNDLE) \
		$(CLUSTER_OVERLAY).stamp $(CLUSTER_BUILD)/imagebuild $(CLUSTER_BUILD)/firstboot
	$(CLUSTER_BUILD)/imagebuild build --firstboot $(CLUSTER_BUILD)/firstboot \
		--cache $(CLUSTER_OUT)/cache configs/cluster-image-iso.yaml -o $(dir $@)
	@touch $@

cluster-image: deps $(CLUSTER_IMAGE)

# Boot N VMs (default 3; INSTALL=iso installs each from the ISO) and show them until ready.
cluster: cluster-image
	INSTALL=$(INSTALL) qemu-tests/cluster.sh up $(N)

cluster-down:
	qemu-tests/cluster.sh down

# End-to-end test of the built image: TAP, ends with "N passed, N failed".
e2e: deps $(CLUSTER_QCOW2)
	qemu-tests/e2e.sh

# Power-on to cluster-ready for N=3 by stage, TCG (and KVM where it works), as a table.
bench-cluster: deps $(CLUSTER_QCOW2)
	qemu-tests/bench-cluster.sh

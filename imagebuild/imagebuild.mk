# imagebuild: included by the top Makefile (which defines BUILD, ALL_CFLAGS, LDLIBS).
DEB_PACKAGES += mmdebstrap xorriso grub-pc-bin grub-efi-amd64-bin grub-common grub2-common mtools \
	squashfs-tools qemu-system-x86 qemu-utils dosfstools umoci skopeo busybox-static ovmf zstd
# The benchmark's anchor (make bench-image): Debian's own live image builder.
DEB_PACKAGES += live-build
# test_repro checks the GPT with both partitioning tools.
DEB_PACKAGES += gdisk fdisk
# Pins grub-mkrescue's clock (its ISO uuid and efi.img dates) under SOURCE_DATE_EPOCH.
DEB_PACKAGES += faketime

IB_SRCS := $(filter-out imagebuild/main.c,$(wildcard imagebuild/*.c))
IB_OBJS := $(patsubst imagebuild/%.c,$(BUILD)/ib-obj/%.o,$(IB_SRCS))
IB_TEST_SRCS := $(wildcard imagebuild/tests/test_*.c)
IB_TEST_BINS := $(patsubst imagebuild/tests/%.c,$(BUILD)/tests/%,$(IB_TEST_SRCS))
IB_CFLAGS = -Iimagebuild -Ifirstboot $(ALL_CFLAGS)
IB_LIBS = $(BUILD)/libimagebuild.a $(BUILD)/libfirstboot.a $(LDLIBS) -lparted

.PHONY: imagebuild image image-test image-fuzz image-bench bench-image
imagebuild: $(BUILD)/imagebuild

$(BUILD)/ib-obj/%.o: imagebuild/%.c
	@mkdir -p $(dir $@)
	$(CC) $(IB_CFLAGS) -c -o $@ $<

$(BUILD)/libimagebuild.a: $(IB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/imagebuild: $(BUILD)/ib-obj/main.o $(BUILD)/libimagebuild.a $(BUILD)/libfirstboot.a
	$(CC) $(IB_CFLAGS) -o $@ $< $(IB_LIBS)

# Explicit rules: the top Makefile's pattern rule only knows firstboot/tests/.
$(IB_TEST_BINS): $(BUILD)/tests/%: imagebuild/tests/%.c $(BUILD)/libimagebuild.a \
		$(BUILD)/libfirstboot.a $(BUILD)/imagebuild
	@mkdir -p $(dir $@)
	$(CC) $(IB_CFLAGS) -DIMAGEBUILD_BIN='"$(abspath $(BUILD))/imagebuild"' -o $@ $< \
		$(IB_LIBS) -lcmocka

test: $(IB_TEST_BINS)

# The image itself: needs root (mmdebstrap, loop devices) and a few minutes.
IMAGE_SPEC ?= configs/image.yaml
IMAGE_OUT ?= $(BUILD)/image-out
image: $(BUILD)/imagebuild $(BUILD)/firstboot
	$(BUILD)/imagebuild build --firstboot $(BUILD)/firstboot $(IMAGE_SPEC) -o $(IMAGE_OUT)

# Build the small test image, then boot its qcow2 (BIOS, UEFI) and ISO under QEMU (TCG) in
# a private network namespace until firstboot reports its inventory. Root; ~10 minutes.
IMAGE_TEST_OUT ?= $(BUILD)/image-test-out
image-test: $(BUILD)/imagebuild $(BUILD)/firstboot
	$(BUILD)/imagebuild build --firstboot $(BUILD)/firstboot configs/image-test.yaml \
		-o $(IMAGE_TEST_OUT)
	imagebuild/tests/image-boot.sh $(IMAGE_TEST_OUT) rainboot-test

# libFuzzer on the image spec and bundle manifest parsers (clang), FUZZ_SECONDS each.
image-fuzz:
	imagebuild/fuzz/run-fuzz.sh $(FUZZ_SECONDS)

# Timings and sizes as a table (cold/warm/firstboot-only rebuild, sizes, reproducibility,
# boot time), with Debian's live-build building the same package set in the same run as
# the anchor. Root; 20-30 minutes on 2 CPUs, so not part of make check.
bench-image: $(BUILD)/imagebuild $(BUILD)/firstboot
	imagebuild/tests/image-bench.sh $(BUILD) $(IMAGE_SPEC)
image-bench: bench-image

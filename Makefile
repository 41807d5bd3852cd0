# rainboot — build, test and bench. `make help` lists the targets.

# Debian 12 packages needed to build and test. `make deps` installs the missing ones.
DEB_PACKAGES := build-essential pkg-config clang libclang-rt-14-dev jq \
	libyaml-dev libnl-3-dev libnl-route-3-dev libblkid-dev libudev-dev libparted-dev \
	libjson-c-dev libsodium-dev libcmocka-dev \
	util-linux e2fsprogs dosfstools parted mdadm lvm2 iproute2 kmod
DEB_PACKAGES += time
DEB_PACKAGES += keepalived haproxy socat
DEB_PACKAGES += spin
DEB_PACKAGES += mariadb-server mariadb-client
DEB_PACKAGES += etcd-server etcd-client
DEB_PACKAGES += procps
DEB_PACKAGES += docker-registry curl libcrypt-dev
DEB_PACKAGES += libssl-dev openssl ca-certificates

PKGS := yaml-0.1 libnl-3.0 libnl-route-3.0 blkid libudev json-c libsodium libcrypto
PKGS += libcrypt
# libparted: headers only; diskapply.c dlopen()s it when a disk is partitioned.
PARTED_CFLAGS := $(shell pkg-config --cflags libparted 2>/dev/null)

CC ?= cc
SANITIZE ?= 0
ifeq ($(SANITIZE),1)
BUILD ?= build/asan
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build/release
SAN_FLAGS :=
endif

WARN := -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Werror
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(CFLAGS) $(WARN) $(SAN_FLAGS) -D_GNU_SOURCE -MMD -MP \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(PARTED_CFLAGS)
LDLIBS := -Wl,--as-needed $(shell pkg-config --libs $(PKGS) 2>/dev/null)

FB_SRCS := $(filter-out firstboot/main.c,$(wildcard firstboot/*.c))
FB_OBJS := $(patsubst firstboot/%.c,$(BUILD)/obj/%.o,$(FB_SRCS))
TEST_SRCS := $(wildcard firstboot/tests/test_*.c)
TEST_BINS := $(patsubst firstboot/tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))

.PHONY: all firstboot deps check test demo bench fuzz clean help
all: firstboot

help:
	@echo "make deps      install the Debian packages the build and tests need"
	@echo "make           build firstboot (build/release/firstboot)"
	@echo "make demo      build, then print this machine's inventory and disk plan"
	@echo "make check     deps + sanitized build + every test (the CI command)"
	@echo "make fuzz      run the libFuzzer targets for FUZZ_SECONDS (default 60) each"
	@echo "make bench     benchmarks, printed as a table"

firstboot: $(BUILD)/firstboot

$(BUILD)/obj/%.o: firstboot/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Ifirstboot -c -o $@ $<

$(BUILD)/libfirstboot.a: $(FB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/firstboot: $(BUILD)/obj/main.o $(BUILD)/libfirstboot.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: firstboot/tests/%.c $(BUILD)/libfirstboot.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Ifirstboot -o $@ $< $(BUILD)/libfirstboot.a $(LDLIBS) -lcmocka

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The CI command: everything it needs is installed first, tests run sanitized.
check: deps
	$(MAKE) --no-print-directory SANITIZE=1 test

TOOLS := $(BUILD)/tools/mcast-tool
$(BUILD)/tools/%: qemu-tests/netns/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $<

test: $(BUILD)/firstboot $(TEST_BINS) $(TOOLS)
	@firstboot/tests/run-tests.sh $(BUILD)

demo: deps
	$(MAKE) --no-print-directory firstboot
	@echo "== inventory of this machine =="
	$(BUILD)/firstboot --cmdline "" inventory
	@echo "== disk plan for configs/default.yaml (nothing is written) =="
	$(BUILD)/firstboot --cmdline "" -c configs/default.yaml disks plan

FUZZ_SECONDS ?= 60
fuzz: deps
	@firstboot/fuzz/run-fuzz.sh $(FUZZ_SECONDS)

bench: deps
	$(MAKE) --no-print-directory firstboot
	@firstboot/tests/bench.sh $(BUILD)
	@qemu-tests/netns/bench-discovery.sh $(BUILD)
	$(MAKE) --no-print-directory $(BUILD)/tools/vip-probe
	@qemu-tests/netns/bench-vip.sh $(BUILD)
	@qemu-tests/netns/bench-bringup.sh $(BUILD)
	@qemu-tests/netns/bench-mysql.sh $(BUILD)

clean:
	rm -rf build

# Component makefiles (image builder, QEMU tests) add their own targets and packages.
-include imagebuild/imagebuild.mk qemu-tests/qemu-tests.mk

-include $(shell find build -xdev -name '*.d' -type f 2>/dev/null)

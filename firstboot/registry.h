/* SPDX-License-Identifier: MIT */
/* The cluster's image registry (DESIGN.md section 5): Debian's docker-registry on the
 * registry node(s) at <address>:5000, TLS from the cluster PKI, htpasswd auth; haproxy
 * forwards VIP:5000 to it; `goodrain.me` resolves to the VIP on every node, so images are
 * goodrain.me:5000/<ns>/<name>:<tag>. Three steps: "registry" (the service), "registry-
 * trust" (every node trusts it), "images" (the offline bundle's images pushed). The
 * rendering pieces are exposed here so tests check them. */
#pragma once

#include <arpa/inet.h>
#include <stdbool.h>

#include "steps.h"

#define REGISTRY_DOMAIN "goodrain.me"
#define REGISTRY_PORT 5000
#define REGISTRY_HOST "goodrain.me:5000"
#define REGISTRY_USER "admin"
/* Debian's docker-registry.service reads this path. */
#define REGISTRY_CONFIG "/etc/docker/registry/config.yml"
#define REGISTRY_HTPASSWD "/etc/docker/registry/htpasswd"
#define REGISTRY_DROPIN "/etc/systemd/system/docker-registry.service.d/rainboot.conf"
#define REGISTRY_CONTAINERD_HOSTS "/etc/containerd/certs.d/" REGISTRY_HOST "/hosts.toml"
/* skopeo, podman and buildah read CAs from here (containers-certs.d(5)). */
#define REGISTRY_CERTS_DIR "/etc/containers/certs.d/" REGISTRY_HOST
#define REGISTRY_HOSTS_FILE "/etc/hosts"
/* Ends the one /etc/hosts line firstboot manages. */
#define REGISTRY_HOSTS_MARK "# rainboot: the registry on the VIP"
/* What the image carries (imagebuild's bundle_install()): the manifest, and the
 * artifacts under the directory next to it. */
#define REGISTRY_BUNDLE_MANIFEST "/usr/share/rainboot/bundle.json"
#define REGISTRY_BUNDLE_DIR "/usr/share/rainboot/bundle"
/* skopeo's credentials for the pushes: never on a command line, where they would end up
 * in the journal and in ps. Under the state directory, 0600. */
#define REGISTRY_AUTH_FILE "secrets/registry-auth.json"

/* The cluster runs its own registry: no external.registry and a registry node planned. */
bool registry_in_cluster(const struct step_ctx *c);
/* Why a registry step cannot run for want of sealed secrets (static text), or NULL: no
 * secrets file, or (password) no registry_password in it. */
const char *registry_secrets_missing(const struct step_ctx *c, bool password);
/* This node's cluster address. -EADDRNOTAVAIL (logged) when the view has none. */
int registry_self_address(const struct step_ctx *c, char buf[static INET_ADDRSTRLEN]);
/* What goodrain.me resolves to: the VIP, or the external load balancer. -ENOENT if none. */
int registry_vip(const struct step_ctx *c, char buf[static INET_ADDRSTRLEN]);

/* docker-registry's config.yml for this node; http_secret signs upload state, the same on
 * every registry node. */
int registry_render_config(const struct step_ctx *c, const char *http_secret, char **ret);
/* "user:$2y$...\n". current: the htpasswd file as it is (NULL if none); when its line for
 * user still matches password it is kept, so a rerun renders the same bytes. */
int registry_htpasswd_line(const char *user, const char *password, const char *current,
                           char **ret);
/* containerd's hosts.toml for goodrain.me:5000, trusting ca_path. */
int registry_render_hosts_toml(const char *ca_path, char **ret);
/* The hosts file text with exactly one managed line "<vip> goodrain.me": every other line
 * kept as it is, except that goodrain.me is taken off lines that name it too (they would
 * shadow the VIP). current may be NULL (no file). */
int registry_hosts_rewrite(const char *current, const char *vip, char **ret);
/* The repository path and tag an oci-archive named name is pushed as: "rainbond/rbd-
 * chaos:v6" stays, a registry host in front ("docker.io/x/y:t") is dropped, no tag means
 * "latest". -EINVAL when it is no valid reference (digests are refused: name a tag). */
int registry_image_ref(const char *name, char **ret);
/* Bounded wait until addr:port accepts TCP connections. -ETIMEDOUT otherwise. */
int registry_wait_ready(const char *addr, unsigned port, unsigned timeout_ms);

/* The manifest digest ("sha256:<hex>") of the single image in an oci-archive, read from
 * its index.json without unpacking it. -EBADMSG if it is no OCI archive or holds more
 * than one image. */
int oci_archive_digest(const char *path, char ret[static 72]);

/* SPDX-License-Identifier: MIT */
/* Kubernetes on the masters and workers (issue 4 item 7): RKE2 or kubeadm, chosen by
 * kubernetes.distribution; and what the Rainbond step (svc_rainbond.c) shares with it.
 * Neither distribution is in Debian 12: the binaries come from the offline bundle the
 * image carries (imagebuild bundle_install(): KUBE_BUNDLE_MANIFEST lists the artifacts,
 * each copied to KUBE_BUNDLE_DIR/<file>). Names looked up there:
 *   binary  rke2, kubeadm, kubelet, kubectl, helm
 *   chart   rainbond
 *   oci-archive  rke2-images* (RKE2 airgap image tarballs)
 * The Kubernetes version kubeadm installs is the "vX.Y.Z" in the kubeadm file's name
 * (e.g. bin/kubeadm-v1.31.4). */
#pragma once

#include <stdio.h>

#include "registry.h"
#include "steps.h"

#define KUBE_BUNDLE_MANIFEST "/usr/share/rainboot/bundle.json"
#define KUBE_BUNDLE_DIR "/usr/share/rainboot/bundle"
/* Where binaries from the bundle are installed. */
#define KUBE_BIN_DIR "/usr/local/bin"

/* RKE2's supervisor (registration) port on every server. Nodes register at the VIP's
 * KUBE_RKE2_VIP_REGISTRATION_PORT, which haproxy forwards to the masters' 9345: not 9345
 * itself, because gateways are often masters, where rke2 server holds *:9345 (the same
 * reason the API is at 16443). An external load balancer forwards 9345 as RKE2 documents. */
#define KUBE_RKE2_REGISTRATION_PORT 9345
#define KUBE_RKE2_VIP_REGISTRATION_PORT 19345
#define KUBE_RKE2_CONFIG "/etc/rancher/rke2/config.yaml"
#define KUBE_RKE2_REGISTRIES "/etc/rancher/rke2/registries.yaml"
#define KUBE_RKE2_KUBECONFIG "/etc/rancher/rke2/rke2.yaml"
#define KUBE_RKE2_IMAGES_DIR "/var/lib/rancher/rke2/agent/images"
#define KUBE_KUBEADM_CONFIG "/etc/rainboot/kubeadm.yaml"
#define KUBE_KUBEADM_KUBECONFIG "/etc/kubernetes/admin.conf"
/* Written by both kubeadm init and join: its presence means this node is in the cluster. */
#define KUBE_KUBELET_CONF "/etc/kubernetes/kubelet.conf"
#define KUBE_KUBEADM_PKI "/etc/kubernetes/pki"
#define KUBE_CONTAINERD_SOCKET "unix:///run/containerd/containerd.sock"
#define KUBE_CONTAINERD_CONFIG "/etc/containerd/config.toml"
/* The sandbox image kubeadm 1.31 expects; the bundle carries it as
 * rainbond/pause:KUBE_PAUSE_VERSION. */
#define KUBE_PAUSE_VERSION "3.10"

/* The namespace of the cluster's images at REGISTRY_HOST (registry.h): Rainbond's own
 * ("rainbond/rbd-chaos:v6" in the bundle) and kubeadm's (rainbond/kube-apiserver:v1.31.4). */
#define KUBE_REGISTRY_NAMESPACE "rainbond"

/* The path (under the step root) of the bundle artifact of that kind and name: 1 found,
 * 0 not listed, -ENOENT no manifest, -EBADMSG an unreadable manifest (logged). */
int kube_bundle_find(const struct step_ctx *c, const char *kind, const char *name, char **ret_path);
/* Every artifact of that kind whose name starts with prefix (NULL-terminated, may be
 * empty). Same returns as kube_bundle_find() but 0 on success. */
int kube_bundle_list(const struct step_ctx *c, const char *kind, const char *prefix, char ***ret_paths);
/* The static skip reason when the bundle lacks the binaries the distribution needs, else
 * NULL (also when the manifest is malformed: render then fails, naming it). */
const char *kube_bundle_missing(const struct step_ctx *c);

/* The static skip reason when the state directory holds no sealed secrets, else NULL. */
const char *kube_secrets_missing(const struct step_ctx *c);

/* The Kubernetes node name: the hostname, or the node id where discovery saw none. */
#define KUBE_NODE_NAME_MAX (NODE_HOSTNAME_MAX + 1 > 2 * NODE_ID_LEN + 1 ? NODE_HOSTNAME_MAX + 1 : 2 * NODE_ID_LEN + 1)
void kube_node_name(const struct node_plan *np, char buf[static KUBE_NODE_NAME_MAX]);
/* The node's cluster address (first of the view); -EADDRNOTAVAIL, logged, if unknown. */
int kube_node_address(const struct step_ctx *c, const struct node_plan *np, char buf[static INET_ADDRSTRLEN]);
/* host:port every node reaches the Kubernetes API at: VIP:KUBE_API_VIP_PORT, or the
 * external load balancer's address and API port. */
int kube_api_endpoint(const struct step_ctx *c, char **ret);
/* The admin kubeconfig the distribution writes on masters, under the step root. */
int kube_kubeconfig(const struct step_ctx *c, char **ret);

/* A YAML single-quoted scalar; -EINVAL for control characters (none belong in a value). */
int kube_yaml_quote(FILE *f, const char *s);

/* kubeadm cannot use the cluster CA (pki.h: Ed25519, whose key never touches a disk;
 * kubeadm loads RSA or ECDSA CA keys only). Its CA key is instead an ECDSA P-256 key
 * derived from ca_seed, so every joiner computes the CA pin (sha256 of the
 * SubjectPublicKeyInfo, "sha256:<hex>") before the bootstrap master has even started. */
#define KUBE_CA_HASH_LEN (7 + 64 + 1)
int kube_ca_hash(const char *ca_seed_hex, const char *cluster_name, char ret[static KUBE_CA_HASH_LEN]);
/* The bootstrap master's CA for kubeadm: <root>/etc/kubernetes/pki/ca.crt and ca.key,
 * written unless a CA with that key is already there. */
int kube_ca_write(const struct step_ctx *c, const char *ca_seed_hex);

/* Rendered files, exposed for the contract tests. token/password/cert_key are the
 * secrets; ca_hash from kube_ca_hash(); version e.g. "v1.31.4". */
int kube_render_rke2_config(const struct step_ctx *c, const char *token, char **ret);
int kube_render_rke2_registries(const struct step_ctx *c, const char *password, char **ret);
int kube_render_kubeadm_config(const struct step_ctx *c, const char *token, const char *cert_key,
                               const char *ca_hash, const char *version, char **ret);
/* "vX.Y.Z[-suffix]" found in s (a bundle file name), or -ENOENT. */
int kube_version_from_name(const char *s, char **ret);

extern const struct step step_kubernetes;
extern const struct step step_rainbond;

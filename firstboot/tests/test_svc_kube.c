/* SPDX-License-Identifier: MIT */
/* kubernetes step, contract-tested: the files RKE2 and kubeadm would read are parsed back
 * with libyaml and checked field by field (every key present, none unexpected) for each
 * node kind: RKE2 bootstrap server, joining server, agent; kubeadm init, control-plane
 * join, worker join. The command sequence is checked exactly; kubeadm's CA pin is checked
 * against the CA written for it, with OpenSSL's own hashing. Writes only under a
 * temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include "config.h"
#include "elect.h"
#include "steps.h"
#include "svc_kube.h"
#include "util.h"
#include "view_json.h"

static const char *const base_yaml = "cluster:\n"
                                     "  name: t\n"
                                     "  token: test-token-0123456789\n"
                                     "  expected_nodes: 3\n";
#define VIP_YAML "vip:\n  address: 192.0.2.100/24\n  router_id: 61\n"

#include "step_fixture.h"
#include "yaml_query.h"

#define TOKEN "abcdef.0123456789abcdef"
#define CERT_KEY "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define CA_SEED "a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0"
#define REG_PW "reg-Pw'1:#"
/* five-nodes.json elects node-1 bootstrap master, node-2/3 masters, node-4/5 workers. */
#define N_BOOTSTRAP 0
#define N_MASTER 1
#define N_WORKER 3
#define SANS "192.0.2.100,node-1,192.0.2.11,node-2,192.0.2.12,node-3,192.0.2.13"

struct kt {
        struct fixture f;
        char state[96];
};

static void write_text(const char *root, const char *rel, const char *text, mode_t mode) {
        _cleanup_free_ char *p = NULL, *dir = NULL;

        assert_int_equal(asprintf_safe(&p, "%s%s", root, rel), 0);
        dir = strdup(p);
        assert_non_null(dir);
        *strrchr(dir, '/') = 0;
        assert_int_equal(mkdir_parents(dir, 0755), 0);
        assert_int_equal(write_file_atomic(p, text, strlen(text), mode), 0);
}

/* items: "kind:name:file" entries, NULL-terminated; each file is created too. */
static void write_bundle(const struct kt *t, const char *const *items) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        fputs("{ \"version\": 1, \"artifacts\": [", f);
        for (size_t i = 0; items[i]; i++) {
                _cleanup_free_ char *copy = strdup(items[i]), *rel = NULL;
                char *kind = copy, *name = strchr(kind, ':') + 1, *file = strchr(name, ':') + 1;

                name[-1] = file[-1] = 0;
                fprintf(f, "%s{ \"name\": \"%s\", \"kind\": \"%s\", \"file\": \"%s\", \"size\": 3, "
                        "\"sha256\": \"%064d\" }", i ? ", " : "", name, kind, file, 0);
                assert_int_equal(asprintf_safe(&rel, KUBE_BUNDLE_DIR "/%s", file), 0);
                write_text(t->f.root, rel, "x\n", 0755);
        }
        fputs("] }\n", f);
        assert_int_equal(fclose(f), 0);
        write_text(t->f.root, KUBE_BUNDLE_MANIFEST, buf, 0644);
        free(buf);
}

static const char *const full_bundle[] = {
        "binary:rke2:bin/rke2",
        "binary:kubeadm:bin/kubeadm-v1.31.4",
        "binary:kubelet:bin/kubelet",
        "binary:kubectl:bin/kubectl",
        "oci-archive:rke2-images.linux-amd64:images/rke2-images.linux-amd64.tar.zst",
        "oci-archive:rke2-images-canal.linux-amd64:images/rke2-images-canal.linux-amd64.tar.zst",
        "oci-archive:rainbond/rbd-chaos:v6:images/rbd-chaos.tar",
        NULL,
};

static void kt_load(struct kt *t, const char *distribution, const char *extra) {
        _cleanup_free_ char *yaml = NULL;

        /* An external load balancer replaces the VIP (the config refuses both). */
        assert_int_equal(asprintf_safe(&yaml, "kubernetes:\n  distribution: %s\n%s%s", distribution,
                                       extra && strstr(extra, "load_balancer") ? "" : VIP_YAML,
                                       extra ?: ""), 0);
        fixture_load(&t->f, "five-nodes.json", yaml);
        snprintf(t->state, sizeof t->state, "%s/state", t->f.root);
        write_text(t->f.root, "/state/secrets/cluster.env",
                   "join_token=" TOKEN "\ncert_key=" CERT_KEY "\nregistry_password=" REG_PW
                   "\nmysql_rainbond_password=db-pw\nca_seed=" CA_SEED "\n", 0600);
        write_bundle(t, full_bundle);
}

static void kt_ctx(struct kt *t, size_t node, struct step_ctx *c) {
        ctx_for(&t->f, node, c);
        c->state_dir = t->state;
}

static char *rooted(const struct kt *t, const char *path) {
        char *p = NULL;

        assert_int_equal(asprintf_safe(&p, "%s%s", t->f.root, path), 0);
        return p;
}

/* Every command of the render, one per line, the root shown as ROOT. */
static char *commands(const struct kt *t, const struct step_render *r) {
        char *buf = NULL;
        size_t size = 0, l = strlen(t->f.root);
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        for (size_t i = 0; i < r->n_commands; i++)
                for (char **a = r->commands[i]; *a; a++) {
                        fputs(a == r->commands[i] ? "" : " ", f);
                        fputs(strncmp(*a, t->f.root, l) == 0 ? "ROOT" : "", f);
                        fputs(strncmp(*a, t->f.root, l) == 0 ? *a + l : *a, f);
                        fputs(a[1] ? "" : "\n", f);
                }
        assert_int_equal(fclose(f), 0);
        return buf;
}

static void assert_commands(const struct kt *t, const struct step_render *r, const char *want) {
        _cleanup_free_ char *got = commands(t, r);

        if (!streq(got, want))
                fail_msg("commands:\n%s\nwant:\n%s", got, want);
}

__attribute__((returns_nonnull)) static const struct step_file *
file_of(const struct step_render *r, const char *suffix, mode_t mode) {
        static const struct step_file none = { .path = (char *)"", .content = (char *)"" };
        const struct step_file *sf = find_file(r, suffix);

        if (!sf) {
                fail_msg("no file %s rendered", suffix);
                return &none;
        }
        assert_int_equal(sf->mode, mode);
        return sf;
}

/* ---- RKE2 ---- */

static const char *const rke2_installs =
        "install -D -m 0755 ROOT/usr/share/rainboot/bundle/bin/rke2 ROOT/usr/local/bin/rke2\n"
        "install -D -m 0755 ROOT/usr/share/rainboot/bundle/bin/kubectl ROOT/usr/local/bin/kubectl\n"
        "install -D -m 0644 ROOT/usr/share/rainboot/bundle/images/rke2-images.linux-amd64.tar.zst "
        "ROOT/var/lib/rancher/rke2/agent/images/rke2-images.linux-amd64.tar.zst\n"
        "install -D -m 0644 ROOT/usr/share/rainboot/bundle/images/rke2-images-canal.linux-amd64.tar.zst "
        "ROOT/var/lib/rancher/rke2/agent/images/rke2-images-canal.linux-amd64.tar.zst\n"
        "systemctl daemon-reload\n";

static void check_registries(struct kt *t, const struct step_render *r) {
        _cleanup_free_ char *ca = rooted(t, "/etc/rainboot/pki/ca.crt");
        struct yq q;

        yq_load(&q, file_of(r, KUBE_RKE2_REGISTRIES, 0600)->content);
        assert_int_equal(q.n, 1);
        assert_yq_keys(&q.docs[0], "", "mirrors,configs");
        assert_yq_keys(&q.docs[0], "mirrors", "goodrain.me:5000");
        assert_yq_keys(&q.docs[0], "mirrors/goodrain.me:5000", "endpoint");
        assert_yq_list(&q.docs[0], "mirrors/goodrain.me:5000/endpoint", "https://goodrain.me:5000");
        assert_yq_keys(&q.docs[0], "configs", "goodrain.me:5000");
        assert_yq_keys(&q.docs[0], "configs/goodrain.me:5000", "auth,tls");
        assert_yq_keys(&q.docs[0], "configs/goodrain.me:5000/auth", "username,password");
        assert_yq(&q.docs[0], "configs/goodrain.me:5000/auth/username", "admin");
        assert_yq(&q.docs[0], "configs/goodrain.me:5000/auth/password", REG_PW);
        assert_yq_keys(&q.docs[0], "configs/goodrain.me:5000/tls", "ca_file");
        assert_yq(&q.docs[0], "configs/goodrain.me:5000/tls/ca_file", ca);
        yq_done(&q);
}

static void check_rke2_service(const struct step_render *r, const char *bin, const char *mode,
                               const char *conf) {
        _cleanup_free_ char *name = NULL, *unit = NULL;

        assert_int_equal(asprintf_safe(&name, "rke2-%s", mode), 0);
        assert_int_equal(asprintf_safe(&unit, "rke2-%s.service", mode), 0);
        assert_int_equal(r->n_services, 1);
        assert_string_equal(r->services[0].name, name);
        assert_string_equal(r->services[0].unit, unit);
        assert_string_equal(r->services[0].argv[0], bin);
        assert_string_equal(r->services[0].argv[1], mode);
        assert_string_equal(r->services[0].argv[2], "--config");
        assert_string_equal(r->services[0].argv[3], conf);
        assert_null(r->services[0].argv[4]);
}

static void test_rke2_bootstrap(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        _cleanup_free_ char *bin = NULL, *conf = NULL, *unit_exec = NULL;
        struct kt t;
        struct step_ctx c;
        struct yq q;

        kt_load(&t, "rke2", NULL);
        kt_ctx(&t, N_BOOTSTRAP, &c);
        assert_true(t.f.plan->nodes[N_BOOTSTRAP].flags & PLAN_BOOTSTRAP);
        assert_null(step_kubernetes.skip_reason(&c));
        assert_int_equal(step_kubernetes.render(&c, &r), 0);

        yq_load(&q, file_of(&r, KUBE_RKE2_CONFIG, 0600)->content);
        assert_int_equal(q.n, 1);
        /* No server: the bootstrap server starts the cluster. */
        assert_yq_keys(&q.docs[0], "", "token,node-name,node-ip,node-label,tls-san,disable,"
                                       "write-kubeconfig-mode");
        assert_yq(&q.docs[0], "token", TOKEN);
        assert_yq(&q.docs[0], "node-name", "node-1");
        assert_yq(&q.docs[0], "node-ip", "192.0.2.11");
        assert_yq_list(&q.docs[0], "node-label",
                       "rainbond.io/etcd=true,rainbond.io/master=true,rainbond.io/rbd-gateway=true,"
                       "rainbond.io/registry=true,rainbond.io/mysql-primary=true");
        assert_yq_list(&q.docs[0], "tls-san", SANS);
        assert_yq_list(&q.docs[0], "disable", "rke2-ingress-nginx");
        assert_yq(&q.docs[0], "write-kubeconfig-mode", "0600");
        yq_done(&q);
        check_registries(&t, &r);

        assert_commands(&t, &r, rke2_installs);
        bin = rooted(&t, "/usr/local/bin/rke2");
        conf = rooted(&t, KUBE_RKE2_CONFIG);
        check_rke2_service(&r, bin, "server", conf);
        assert_int_equal(asprintf_safe(&unit_exec, "ExecStart=%s server", bin), 0);
        assert_line(file_of(&r, "/etc/systemd/system/rke2-server.service", 0644)->content, unit_exec);
        assert_line(find_file(&r, "rke2-server.service")->content, "Type=notify");
        assert_line(find_file(&r, "rke2-server.service")->content, "TimeoutStartSec=15min");
        assert_int_equal(r.n_files, 3);
        fixture_done(&t.f);
}

static void test_rke2_joining_server(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        _cleanup_free_ char *bin = NULL, *conf = NULL;
        struct kt t;
        struct step_ctx c;
        struct yq q;

        kt_load(&t, "rke2", NULL);
        kt_ctx(&t, N_MASTER, &c);
        assert_int_equal(step_kubernetes.render(&c, &r), 0);
        yq_load(&q, file_of(&r, KUBE_RKE2_CONFIG, 0600)->content);
        assert_yq_keys(&q.docs[0], "", "server,token,node-name,node-ip,node-label,tls-san,disable,"
                                       "write-kubeconfig-mode");
        assert_yq(&q.docs[0], "server", "https://192.0.2.100:19345");
        assert_yq(&q.docs[0], "token", TOKEN);
        assert_yq(&q.docs[0], "node-name", "node-2");
        assert_yq(&q.docs[0], "node-ip", "192.0.2.12");
        assert_yq_list(&q.docs[0], "node-label",
                       "rainbond.io/etcd=true,rainbond.io/master=true,rainbond.io/rbd-gateway=true,"
                       "rainbond.io/mysql-replica=true");
        assert_yq_list(&q.docs[0], "tls-san", SANS);
        assert_yq_list(&q.docs[0], "disable", "rke2-ingress-nginx");
        assert_yq(&q.docs[0], "write-kubeconfig-mode", "0600");
        yq_done(&q);
        check_registries(&t, &r);
        assert_commands(&t, &r, rke2_installs);
        bin = rooted(&t, "/usr/local/bin/rke2");
        conf = rooted(&t, KUBE_RKE2_CONFIG);
        check_rke2_service(&r, bin, "server", conf);
        fixture_done(&t.f);
}

static void test_rke2_agent(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        _cleanup_free_ char *bin = NULL, *conf = NULL;
        struct kt t;
        struct step_ctx c;
        struct yq q;

        kt_load(&t, "rke2", NULL);
        kt_ctx(&t, N_WORKER, &c);
        assert_int_equal(step_kubernetes.render(&c, &r), 0);
        yq_load(&q, file_of(&r, KUBE_RKE2_CONFIG, 0600)->content);
        /* Agents take no server-only keys (tls-san, disable, write-kubeconfig-mode). */
        assert_yq_keys(&q.docs[0], "", "server,token,node-name,node-ip,node-label");
        assert_yq(&q.docs[0], "server", "https://192.0.2.100:19345");
        assert_yq(&q.docs[0], "token", TOKEN);
        assert_yq(&q.docs[0], "node-name", "node-4");
        assert_yq(&q.docs[0], "node-ip", "192.0.2.14");
        assert_yq_list(&q.docs[0], "node-label", "rainbond.io/worker=true");
        yq_done(&q);
        check_registries(&t, &r);
        assert_commands(&t, &r, rke2_installs);
        bin = rooted(&t, "/usr/local/bin/rke2");
        conf = rooted(&t, KUBE_RKE2_CONFIG);
        check_rke2_service(&r, bin, "agent", conf);
        assert_non_null(find_file(&r, "/etc/systemd/system/rke2-agent.service"));
        fixture_done(&t.f);
}

/* An external load balancer takes the VIP's place as the fixed registration address. */
static void test_rke2_external_lb(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        struct kt t;
        struct step_ctx c;
        struct yq q;

        kt_load(&t, "rke2", "external:\n  load_balancer: {address: 198.51.100.7, api_port: 7443}\n");
        kt_ctx(&t, N_WORKER, &c);
        assert_int_equal(step_kubernetes.render(&c, &r), 0);
        yq_load(&q, find_file(&r, KUBE_RKE2_CONFIG)->content);
        assert_yq(&q.docs[0], "server", "https://198.51.100.7:9345");
        yq_done(&q);
        step_render_done(&r);
        kt_ctx(&t, N_BOOTSTRAP, &c);
        assert_int_equal(step_kubernetes.render(&c, &r), 0);
        yq_load(&q, find_file(&r, KUBE_RKE2_CONFIG)->content);
        assert_yq_list(&q.docs[0], "tls-san", "198.51.100.7,node-1,192.0.2.11,node-2,192.0.2.12,"
                                              "node-3,192.0.2.13");
        yq_done(&q);
        fixture_done(&t.f);
}

/* The supervisor's is the only kind of systemd call: no daemon-reload in direct mode. */
static void test_rke2_direct(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        struct kt t;
        struct step_ctx c;

        kt_load(&t, "rke2", NULL);
        kt_ctx(&t, N_WORKER, &c);
        c.supervisor = SVCMGR_DIRECT;
        assert_int_equal(step_kubernetes.render(&c, &r), 0);
        for (size_t i = 0; i < r.n_commands; i++)
                assert_string_not_equal(r.commands[i][0], "systemctl");
        fixture_done(&t.f);
}

__attribute__((returns_nonnull)) static const char *must_find(const char *text, const char *what) {
        const char *p = strstr(text, what);

        if (!p)
                fail_msg("no '%s' in:\n%s", what, text);
        return p ? p : "";
}

/* haproxy on the gateways forwards the VIP's registration port to every master's 9345,
 * only for RKE2; the result is a config haproxy accepts. */
static void test_haproxy_registration(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        _cleanup_free_ char *cmd = NULL;
        const char *cfg, *fe;
        struct kt t;
        struct step_ctx c;

        kt_load(&t, "rke2", NULL);
        kt_ctx(&t, N_BOOTSTRAP, &c);
        assert_int_equal(step_haproxy.render(&c, &r), 0);
        cfg = find_file(&r, "/etc/haproxy/haproxy.cfg")->content;
        fe = must_find(cfg, "frontend rke2-registration\n");
        assert_line(fe, "bind :19345");
        assert_line(fe, "default_backend rke2-registration");
        fe = must_find(cfg, "backend rke2-registration\n");
        assert_line(fe, "server node-1-105eed00 192.0.2.11:9345 check");
        assert_line(fe, "server node-2-205eed00 192.0.2.12:9345 check");
        assert_line(fe, "server node-3-305eed00 192.0.2.13:9345 check");
        assert_null(strstr(fe, "192.0.2.14"));
        if (access("/usr/sbin/haproxy", X_OK) == 0) {
                write_text(t.f.root, "/haproxy.cfg", cfg, 0644);
                assert_int_equal(asprintf_safe(&cmd, "haproxy -c -q -f %s/haproxy.cfg", t.f.root), 0);
                assert_int_equal(system(cmd), 0);
        }
        step_render_done(&r);
        fixture_done(&t.f);

        kt_load(&t, "kubeadm", NULL);
        kt_ctx(&t, N_BOOTSTRAP, &c);
        assert_int_equal(step_haproxy.render(&c, &r), 0);
        assert_null(strstr(find_file(&r, "/etc/haproxy/haproxy.cfg")->content, "rke2"));
        fixture_done(&t.f);
}

/* ---- kubeadm ---- */

/* untainted: a master that also carries workloads, so kubeadm's control-plane taint is
 * cleared (taints: []); otherwise the field is absent (kubeadm's defaults). */
static void check_node_registration(yaml_document_t *d, const char *base, const char *name,
                                    const char *addr, const char *labels, bool untainted) {
        _cleanup_free_ char *p = NULL;

#define P(suffix) (free(p), p = NULL, assert_int_equal(asprintf_safe(&p, "%s%s", base, suffix), 0), p)
        assert_yq_keys(d, P("nodeRegistration"), untainted ? "name,criSocket,taints,kubeletExtraArgs"
                                                           : "name,criSocket,kubeletExtraArgs");
        if (untainted)
                assert_int_equal(yq_len(d, P("nodeRegistration/taints")), 0);
        assert_yq(d, P("nodeRegistration/name"), name);
        assert_yq(d, P("nodeRegistration/criSocket"), "unix:///run/containerd/containerd.sock");
        /* v1beta4: a list of {name, value}, no longer a map. */
        assert_int_equal(yq_len(d, P("nodeRegistration/kubeletExtraArgs")), 2);
        assert_yq_keys(d, P("nodeRegistration/kubeletExtraArgs/0"), "name,value");
        assert_yq(d, P("nodeRegistration/kubeletExtraArgs/0/name"), "node-ip");
        assert_yq(d, P("nodeRegistration/kubeletExtraArgs/0/value"), addr);
        assert_yq_keys(d, P("nodeRegistration/kubeletExtraArgs/1"), "name,value");
        assert_yq(d, P("nodeRegistration/kubeletExtraArgs/1/name"), "node-labels");
        assert_yq(d, P("nodeRegistration/kubeletExtraArgs/1/value"), labels);
#undef P
}

static char *kubeadm_installs(const char *last) {
        char *s = NULL;

        assert_int_equal(asprintf_safe(&s,
                "install -D -m 0755 ROOT/usr/share/rainboot/bundle/bin/kubeadm-v1.31.4 ROOT/usr/local/bin/kubeadm\n"
                "install -D -m 0755 ROOT/usr/share/rainboot/bundle/bin/kubelet ROOT/usr/local/bin/kubelet\n"
                "install -D -m 0755 ROOT/usr/share/rainboot/bundle/bin/kubectl ROOT/usr/local/bin/kubectl\n"
                "systemctl daemon-reload\n"
                "systemctl restart containerd.service\n"
                "systemctl enable kubelet.service\n"
                "%s\n", last), 0);
        return s;
}

static void check_kubelet(struct kt *t, const struct step_render *r) {
        _cleanup_free_ char *bin = rooted(t, "/usr/local/bin/kubelet"), *exec = NULL;
        _cleanup_free_ char *certs = rooted(t, "/etc/containerd/certs.d");
        char line[256];
        const char *toml = file_of(r, "/etc/containerd/config.toml", 0644)->content ?: "";

        /* containerd as the kubelet needs it: the registry's certs.d, the offline pause
         * image, the systemd cgroup driver. */
        assert_line(toml, "version = 2");
        assert_line(toml, "sandbox_image = \"goodrain.me:5000/rainbond/pause:3.10\"");
        assert_line(toml, "SystemdCgroup = true");
        assert_line(toml, "runtime_type = \"io.containerd.runc.v2\"");
        snprintf(line, sizeof line, "config_path = \"%s\"", certs);
        assert_line(toml, line);
        assert_non_null(strstr(toml, "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n"
                                     "  SystemdCgroup = true\n"));
        assert_non_null(strstr(toml, "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path"));

        assert_int_equal(r->n_services, 1);
        assert_string_equal(r->services[0].name, "kubelet");
        assert_string_equal(r->services[0].unit, "kubelet.service");
        assert_string_equal(r->services[0].argv[0], bin);
        assert_int_equal(asprintf_safe(&exec, "ExecStart=%s", bin), 0);
        assert_line(file_of(r, "/etc/systemd/system/kubelet.service", 0644)->content, exec);
        free(exec);
        exec = NULL;
        assert_int_equal(asprintf_safe(&exec, "ExecStart=%s $KUBELET_KUBECONFIG_ARGS "
                                              "$KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS "
                                              "$KUBELET_EXTRA_ARGS", bin), 0);
        assert_line(file_of(r, "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", 0644)->content,
                    exec);
}

static void test_kubeadm_init(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        _cleanup_free_ char *ca = NULL, *crt = NULL, *key = NULL, *want = NULL;
        struct kt t;
        struct step_ctx c;
        struct yq q;
        yaml_document_t *d;

        kt_load(&t, "kubeadm", NULL);
        kt_ctx(&t, N_BOOTSTRAP, &c);
        assert_null(step_kubernetes.skip_reason(&c));
        assert_int_equal(step_kubernetes.render(&c, &r), 0);
        yq_load(&q, file_of(&r, KUBE_KUBEADM_CONFIG, 0600)->content);
        assert_int_equal(q.n, 2);

        d = yq_kind(&q, "InitConfiguration");
        assert_yq_keys(d, "", "apiVersion,kind,bootstrapTokens,certificateKey,nodeRegistration,"
                              "localAPIEndpoint");
        assert_yq(d, "apiVersion", "kubeadm.k8s.io/v1beta4");
        assert_int_equal(yq_len(d, "bootstrapTokens"), 1);
        assert_yq_keys(d, "bootstrapTokens/0", "token,ttl,usages,groups");
        assert_yq(d, "bootstrapTokens/0/token", TOKEN);
        assert_yq(d, "bootstrapTokens/0/ttl", "0s");
        assert_yq_list(d, "bootstrapTokens/0/usages", "signing,authentication");
        assert_yq_list(d, "bootstrapTokens/0/groups", "system:bootstrappers:kubeadm:default-node-token");
        assert_yq(d, "certificateKey", CERT_KEY);
        check_node_registration(d, "", "node-1", "192.0.2.11",
                                "rainbond.io/etcd=true,rainbond.io/master=true,"
                                "rainbond.io/rbd-gateway=true,rainbond.io/registry=true,"
                                "rainbond.io/mysql-primary=true", true);
        assert_yq_keys(d, "localAPIEndpoint", "advertiseAddress,bindPort");
        assert_yq(d, "localAPIEndpoint/advertiseAddress", "192.0.2.11");
        assert_yq(d, "localAPIEndpoint/bindPort", "6443");

        d = yq_kind(&q, "ClusterConfiguration");
        assert_yq_keys(d, "", "apiVersion,kind,clusterName,kubernetesVersion,controlPlaneEndpoint,"
                              "imageRepository,encryptionAlgorithm,etcd,apiServer");
        assert_yq(d, "apiVersion", "kubeadm.k8s.io/v1beta4");
        assert_yq(d, "clusterName", "t");
        assert_yq(d, "kubernetesVersion", "v1.31.4");
        assert_yq(d, "controlPlaneEndpoint", "192.0.2.100:16443");
        assert_yq(d, "imageRepository", "goodrain.me:5000/rainbond");
        assert_yq(d, "encryptionAlgorithm", "ECDSA-P256");
        assert_yq_keys(d, "etcd", "external");
        assert_yq_keys(d, "etcd/external", "endpoints,caFile,certFile,keyFile");
        assert_yq_list(d, "etcd/external/endpoints",
                       "https://192.0.2.11:2379,https://192.0.2.12:2379,https://192.0.2.13:2379");
        ca = rooted(&t, "/etc/rainboot/pki/ca.crt");
        crt = rooted(&t, "/etc/rainboot/pki/etcd.crt");
        key = rooted(&t, "/etc/rainboot/pki/etcd.key");
        assert_yq(d, "etcd/external/caFile", ca);
        assert_yq(d, "etcd/external/certFile", crt);
        assert_yq(d, "etcd/external/keyFile", key);
        assert_yq_keys(d, "apiServer", "certSANs");
        assert_yq_list(d, "apiServer/certSANs", SANS);
        yq_done(&q);

        want = kubeadm_installs("ROOT/usr/local/bin/kubeadm init --config ROOT/etc/rainboot/kubeadm.yaml "
                                "--upload-certs");
        assert_commands(&t, &r, want);
        check_kubelet(&t, &r);
        assert_int_equal(r.n_files, 4);
        fixture_done(&t.f);
}

static void check_join(struct kt *t, size_t node, const char *name, const char *addr,
                       const char *labels, bool control_plane, bool untainted) {
        _cleanup_(step_render_done) struct step_render r = {};
        _cleanup_free_ char *want = NULL;
        char hash[KUBE_CA_HASH_LEN];
        struct step_ctx c;
        struct yq q;
        yaml_document_t *d;

        kt_ctx(t, node, &c);
        assert_int_equal(step_kubernetes.render(&c, &r), 0);
        yq_load(&q, file_of(&r, KUBE_KUBEADM_CONFIG, 0600)->content);
        assert_int_equal(q.n, 1);
        d = yq_kind(&q, "JoinConfiguration");
        assert_yq_keys(d, "", control_plane ? "apiVersion,kind,discovery,nodeRegistration,controlPlane"
                                            : "apiVersion,kind,discovery,nodeRegistration");
        assert_yq(d, "apiVersion", "kubeadm.k8s.io/v1beta4");
        assert_yq_keys(d, "discovery", "bootstrapToken");
        /* Pinned, never unsafeSkipCAVerification. */
        assert_yq_keys(d, "discovery/bootstrapToken", "apiServerEndpoint,token,caCertHashes");
        assert_yq(d, "discovery/bootstrapToken/apiServerEndpoint", "192.0.2.100:16443");
        assert_yq(d, "discovery/bootstrapToken/token", TOKEN);
        assert_int_equal(kube_ca_hash(CA_SEED, "t", hash), 0);
        assert_yq_list(d, "discovery/bootstrapToken/caCertHashes", hash);
        check_node_registration(d, "", name, addr, labels, untainted);
        if (control_plane) {
                assert_yq_keys(d, "controlPlane", "localAPIEndpoint,certificateKey");
                assert_yq_keys(d, "controlPlane/localAPIEndpoint", "advertiseAddress,bindPort");
                assert_yq(d, "controlPlane/localAPIEndpoint/advertiseAddress", addr);
                assert_yq(d, "controlPlane/localAPIEndpoint/bindPort", "6443");
                assert_yq(d, "controlPlane/certificateKey", CERT_KEY);
        }
        yq_done(&q);
        want = kubeadm_installs("ROOT/usr/local/bin/kubeadm join --config ROOT/etc/rainboot/kubeadm.yaml");
        assert_commands(t, &r, want);
        check_kubelet(t, &r);
}

static void test_kubeadm_join(void **state _unused_) {
        struct kt t;

        kt_load(&t, "kubeadm", NULL);
        check_join(&t, N_MASTER, "node-2", "192.0.2.12",
                   "rainbond.io/etcd=true,rainbond.io/master=true,rainbond.io/rbd-gateway=true,"
                   "rainbond.io/mysql-replica=true", true, true);
        check_join(&t, N_WORKER, "node-4", "192.0.2.14", "rainbond.io/worker=true", false, false);
        fixture_done(&t.f);

        /* One gateway: node-2 is a master and nothing else, and keeps kubeadm's taint. */
        kt_load(&t, "kubeadm", "roles:\n  gateways: 1\n");
        assert_int_equal(t.f.plan->nodes[N_MASTER].roles & (ROLE_WORKER | ROLE_GATEWAY | ROLE_BUILDER), 0);
        check_join(&t, N_MASTER, "node-2", "192.0.2.12",
                   "rainbond.io/etcd=true,rainbond.io/master=true,rainbond.io/mysql-replica=true",
                   true, false);
        fixture_done(&t.f);
}

/* The pin a joiner computes before the bootstrap master exists is the SubjectPublicKeyInfo
 * hash of the CA the bootstrap master hands kubeadm (hashed here by OpenSSL, not by the
 * code under test); the CA is one kubeadm loads (ECDSA P-256, CA:TRUE, self-signed). */
static void test_kubeadm_ca_pin(void **state _unused_) {
        _cleanup_free_ char *crt_path = NULL, *key_path = NULL, *crt1 = NULL, *crt2 = NULL;
        char hash[KUBE_CA_HASH_LEN], other[KUBE_CA_HASH_LEN], hex[65];
        unsigned char md[32], *der = NULL;
        unsigned md_len = 0;
        struct stat st;
        struct kt t;
        struct step_ctx c;
        FILE *f;
        X509 *x;
        EVP_PKEY *pub, *priv;
        int n;

        kt_load(&t, "kubeadm", NULL);
        kt_ctx(&t, N_BOOTSTRAP, &c);
        assert_int_equal(kube_ca_write(&c, CA_SEED), 0);
        crt_path = rooted(&t, "/etc/kubernetes/pki/ca.crt");
        key_path = rooted(&t, "/etc/kubernetes/pki/ca.key");
        assert_int_equal(stat(key_path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        f = fopen(crt_path, "re");
        assert_non_null(f);
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        assert_non_null(x);
        pub = X509_get0_pubkey(x);
        assert_int_equal(EVP_PKEY_get_base_id(pub), EVP_PKEY_EC);
        assert_int_equal(EVP_PKEY_get_bits(pub), 256);
        assert_int_equal(X509_verify(x, pub), 1);
        assert_int_equal(X509_check_ca(x), 1);
        n = i2d_PUBKEY(pub, &der);
        assert_true(n > 0);
        assert_int_equal(EVP_Digest(der, (size_t)n, md, &md_len, EVP_sha256(), NULL), 1);
        OPENSSL_free(der);
        hex_encode(md, sizeof md, hex);
        assert_int_equal(kube_ca_hash(CA_SEED, "t", hash), 0);
        assert_string_equal(hash + 7, hex);
        assert_true(startswith(hash, "sha256:"));

        /* The key file holds the certificate's key. */
        f = fopen(key_path, "re");
        assert_non_null(f);
        priv = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        assert_non_null(priv);
        assert_int_equal(EVP_PKEY_eq(priv, pub), 1);
        EVP_PKEY_free(priv);
        X509_free(x);

        /* A rerun keeps the certificate (its signature is randomized). */
        assert_int_equal(read_full_file(crt_path, &crt1, NULL), 0);
        assert_int_equal(kube_ca_write(&c, CA_SEED), 0);
        assert_int_equal(read_full_file(crt_path, &crt2, NULL), 0);
        assert_string_equal(crt1, crt2);

        /* Another seed or another cluster: another CA. */
        assert_int_equal(kube_ca_hash("b1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0",
                                      "t", other), 0);
        assert_string_not_equal(hash, other);
        assert_int_equal(kube_ca_hash(CA_SEED, "u", other), 0);
        assert_string_not_equal(hash, other);
        assert_int_equal(kube_ca_hash("not-hex", "t", other), -EINVAL);
        fixture_done(&t.f);
}

/* ---- skips and failures ---- */

static void test_skip_without_binaries(void **state _unused_) {
        static const char *const no_rke2[] = { "binary:kubeadm:bin/kubeadm-v1.31.4",
                                               "binary:kubelet:bin/kubelet", NULL };
        static const char *const no_kubelet[] = { "binary:kubeadm:bin/kubeadm-v1.31.4",
                                                  "binary:rke2:bin/rke2", NULL };
        _cleanup_free_ char *manifest = NULL;
        struct kt t;
        struct step_ctx c;

        kt_load(&t, "rke2", NULL);
        kt_ctx(&t, N_WORKER, &c);
        write_bundle(&t, no_rke2);
        assert_string_equal(step_kubernetes.skip_reason(&c),
                            "no rke2 binary in the offline bundle (/usr/share/rainboot/bundle.json)");
        write_bundle(&t, no_kubelet);
        assert_null(step_kubernetes.skip_reason(&c));
        fixture_done(&t.f);

        kt_load(&t, "kubeadm", NULL);
        kt_ctx(&t, N_BOOTSTRAP, &c);
        write_bundle(&t, no_kubelet);
        assert_string_equal(step_kubernetes.skip_reason(&c),
                            "no kubelet binary in the offline bundle (/usr/share/rainboot/bundle.json)");
        write_bundle(&t, no_rke2);
        assert_null(step_kubernetes.skip_reason(&c));
        manifest = rooted(&t, KUBE_BUNDLE_MANIFEST);
        assert_int_equal(unlink(manifest), 0);
        assert_string_equal(step_kubernetes.skip_reason(&c),
                            "no offline bundle in this image (/usr/share/rainboot/bundle.json is missing)");
        /* A damaged manifest is not skipped quietly: render names it. */
        write_text(t.f.root, KUBE_BUNDLE_MANIFEST, "{ \"version\": 1 }", 0644);
        assert_null(step_kubernetes.skip_reason(&c));
        {
                _cleanup_(step_render_done) struct step_render r = {};

                assert_int_equal(step_kubernetes.render(&c, &r), -EBADMSG);
        }
        fixture_done(&t.f);
}

static void test_bundle_paths_stay_inside(void **state _unused_) {
        _cleanup_free_ char *p = NULL;
        struct kt t;
        struct step_ctx c;

        kt_load(&t, "rke2", NULL);
        kt_ctx(&t, N_WORKER, &c);
        /* write_bundle() would create the file outside; the manifest is written by hand. */
        write_text(t.f.root, KUBE_BUNDLE_MANIFEST,
                   "{\"version\":1,\"artifacts\":[{\"name\":\"rke2\",\"kind\":\"binary\","
                   "\"file\":\"../../../bin/sh\",\"size\":1,\"sha256\":\"00\"}]}", 0644);
        assert_int_equal(kube_bundle_find(&c, "binary", "rke2", &p), -EBADMSG);
        fixture_done(&t.f);
}

static void test_needs_secrets(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        struct kt t;
        struct step_ctx c;

        kt_load(&t, "kubeadm", NULL);
        kt_ctx(&t, N_WORKER, &c);
        write_text(t.f.root, "/state/secrets/cluster.env", "join_token=" TOKEN "\n", 0600);
        assert_int_equal(step_kubernetes.render(&c, &r), -ENOENT);
        /* A token kubeadm would refuse is caught here, naming the secrets file. */
        write_text(t.f.root, "/state/secrets/cluster.env",
                   "join_token=ABC.x\ncert_key=" CERT_KEY "\nca_seed=" CA_SEED "\n", 0600);
        assert_int_equal(step_kubernetes.render(&c, &r), -EINVAL);
        /* No secrets at all: a node given a plan by hand, skipped like the other steps. */
        {
                _cleanup_free_ char *p = NULL;

                assert_int_equal(asprintf_safe(&p, "%s/secrets/cluster.env", t.state), 0);
                assert_int_equal(unlink(p), 0);
                assert_string_equal(step_kubernetes.skip_reason(&c),
                                    "no sealed secrets (secrets/cluster.env) in the state directory");
        }
        fixture_done(&t.f);
}

static void test_version_from_name(void **state _unused_) {
        static const struct { const char *in, *want; } cases[] = {
                { "/x/bundle/bin/kubeadm-v1.31.4", "v1.31.4" },
                { "bin/v1.30.0/kubeadm", "v1.30.0" },
                { "bin/kubeadm-v1.31.4-rc.1", "v1.31.4-rc.1" },
                { "bin/kubeadm_v1.31.4+build.7", "v1.31.4+build.7" },
                { "bin/kubeadm-v1.31.4.tar", "v1.31.4" },
                { "dev/v1.2/kubeadm-v1.29.10", "v1.29.10" },
        };
        char *v = NULL;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                assert_int_equal(kube_version_from_name(cases[i].in, &v), 0);
                assert_string_equal(v, cases[i].want);
                free(v);
                v = NULL;
        }
        assert_int_equal(kube_version_from_name("bin/kubeadm", &v), -ENOENT);
        assert_int_equal(kube_version_from_name("srv/v1.2/kubeadm", &v), -ENOENT);
        assert_null(v);
}

/* Quotes and YAML indicators in a secret survive the round trip. */
static void test_quoting(void **state _unused_) {
        _cleanup_free_ char *text = NULL;
        struct kt t;
        struct step_ctx c;
        struct yq q;

        kt_load(&t, "rke2", NULL);
        kt_ctx(&t, N_WORKER, &c);
        assert_int_equal(kube_render_rke2_config(&c, "it's: #a [b]", &text), 0);
        yq_load(&q, text);
        assert_yq(&q.docs[0], "token", "it's: #a [b]");
        yq_done(&q);
        free(text);
        text = NULL;
        assert_int_equal(kube_render_rke2_config(&c, "two\nlines", &text), -EINVAL);
        assert_null(text);
        fixture_done(&t.f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rke2_bootstrap),
                cmocka_unit_test(test_rke2_joining_server),
                cmocka_unit_test(test_rke2_agent),
                cmocka_unit_test(test_rke2_external_lb),
                cmocka_unit_test(test_rke2_direct),
                cmocka_unit_test(test_haproxy_registration),
                cmocka_unit_test(test_kubeadm_init),
                cmocka_unit_test(test_kubeadm_join),
                cmocka_unit_test(test_kubeadm_ca_pin),
                cmocka_unit_test(test_skip_without_binaries),
                cmocka_unit_test(test_bundle_paths_stay_inside),
                cmocka_unit_test(test_needs_secrets),
                cmocka_unit_test(test_version_from_name),
                cmocka_unit_test(test_quoting),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

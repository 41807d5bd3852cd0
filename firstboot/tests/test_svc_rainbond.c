/* SPDX-License-Identifier: MIT */
/* rainbond step, contract-tested: the Helm values parsed back with libyaml and checked
 * key by key against the names of Rainbond's chart documentation, for a cluster that
 * runs its own registry and MySQL and for one that uses external ones; and the helm
 * commands, present only when the bundle has helm and the chart. Writes only under a
 * temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

#include "step_fixture.h"
#include "yaml_query.h"

#define VALUES "/etc/rainboot/rainbond/values.yaml"
#define REG_PW "reg-Pw'1:#"
#define DB_PW "db-Pw \"2\" [x]"
/* five-nodes.json: node-1 bootstrap + MySQL primary; gateways node-1..3; builder node-5. */
#define N_BOOTSTRAP 0
#define GATEWAYS "name,internalIP,externalIP"

static const char *const in_cluster_yaml = "vip:\n  address: 192.0.2.100/24\n  router_id: 61\n";
static const char *const external_yaml =
        "external:\n"
        "  load_balancer: {address: 198.51.100.7}\n"
        "  registry:\n"
        "    domain: registry.example.com:8443\n"
        "    namespace: team/rainbond\n"
        "    username: robot\n"
        "    password: \"ext'reg pw\"\n"
        "  mysql:\n"
        "    host: db.example.com\n"
        "    port: 3307\n"
        "    username: rb\n"
        "    password: \"ext-db: pw\"\n"
        "    console_database: rb_console\n"
        "    region_database: rb_region\n";

struct rt {
        struct fixture f;
        char state[96];
};

static void write_text(const char *root, const char *rel, const char *text) {
        _cleanup_free_ char *p = NULL, *dir = NULL;

        assert_int_equal(asprintf_safe(&p, "%s%s", root, rel), 0);
        dir = strdup(p);
        assert_non_null(dir);
        *strrchr(dir, '/') = 0;
        assert_int_equal(mkdir_parents(dir, 0755), 0);
        assert_int_equal(write_file_atomic(p, text, strlen(text), 0600), 0);
}

static void write_bundle(const struct rt *t, bool with_helm) {
        char *text = NULL;

        assert_int_equal(asprintf_safe(&text,
                "{\"version\":1,\"artifacts\":["
                "{\"name\":\"kubeadm\",\"kind\":\"binary\",\"file\":\"bin/kubeadm-v1.31.4\"},"
                "{\"name\":\"kubelet\",\"kind\":\"binary\",\"file\":\"bin/kubelet\"},"
                "{\"name\":\"rke2\",\"kind\":\"binary\",\"file\":\"bin/rke2\"}%s]}",
                with_helm ? ",{\"name\":\"helm\",\"kind\":\"binary\",\"file\":\"bin/helm\"},"
                            "{\"name\":\"rainbond\",\"kind\":\"chart\",\"file\":\"charts/rainbond-6.0.0.tgz\"}"
                          : ""), 0);
        write_text(t->f.root, KUBE_BUNDLE_MANIFEST, text);
        free(text);
}

static void rt_load(struct rt *t, const char *distribution, const char *extra, bool with_helm) {
        _cleanup_free_ char *yaml = NULL;

        assert_int_equal(asprintf_safe(&yaml, "kubernetes:\n  distribution: %s\n%s", distribution,
                                       extra), 0);
        fixture_load(&t->f, "five-nodes.json", yaml);
        snprintf(t->state, sizeof t->state, "%s/state", t->f.root);
        write_text(t->f.root, "/state/secrets/cluster.env",
                   "join_token=abcdef.0123456789abcdef\nregistry_password=" REG_PW
                   "\nmysql_rainbond_password=" DB_PW "\n");
        write_bundle(t, with_helm);
}

static void rt_ctx(struct rt *t, size_t node, struct step_ctx *c) {
        ctx_for(&t->f, node, c);
        c->state_dir = t->state;
}

static const struct step_file *values_of(const struct step_render *r) {
        const struct step_file *sf = find_file(r, VALUES);

        assert_non_null(sf);
        assert_int_equal(sf->mode, 0600);
        return sf;
}

static void check_nodes(yaml_document_t *d) {
        assert_int_equal(yq_len(d, "Cluster/nodesForGateway"), 3);
        for (int i = 0; i < 3; i++) {
                char p[64], name[16], addr[16];

                snprintf(name, sizeof name, "node-%d", i + 1);
                snprintf(addr, sizeof addr, "192.0.2.%d", 11 + i);
                snprintf(p, sizeof p, "Cluster/nodesForGateway/%d", i);
                assert_yq_keys(d, p, GATEWAYS);
                snprintf(p, sizeof p, "Cluster/nodesForGateway/%d/name", i);
                assert_yq(d, p, name);
                snprintf(p, sizeof p, "Cluster/nodesForGateway/%d/internalIP", i);
                assert_yq(d, p, addr);
                snprintf(p, sizeof p, "Cluster/nodesForGateway/%d/externalIP", i);
                assert_yq(d, p, addr);
        }
        assert_int_equal(yq_len(d, "Cluster/nodesForChaos"), 1);
        assert_yq_keys(d, "Cluster/nodesForChaos/0", "name");
        assert_yq(d, "Cluster/nodesForChaos/0/name", "node-5");
}

static void check_db(yaml_document_t *d, const char *key, const char *host, const char *port,
                     const char *name, const char *user, const char *pw) {
        char p[64];

        snprintf(p, sizeof p, "Cluster/%s", key);
        assert_yq_keys(d, p, "enable,host,port,name,username,password");
#define F(field, want)                                                          \
        do {                                                                    \
                snprintf(p, sizeof p, "Cluster/%s/%s", key, field);             \
                assert_yq(d, p, want);                                          \
        } while (0)
        F("enable", "true");
        F("host", host);
        F("port", port);
        F("name", name);
        F("username", user);
        F("password", pw);
#undef F
}

static void test_in_cluster(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        _cleanup_free_ char *helm = NULL, *src = NULL, *chart = NULL, *values = NULL, *kc = NULL;
        struct rt t;
        struct step_ctx c;
        struct yq q;
        yaml_document_t *d;

        rt_load(&t, "rke2", in_cluster_yaml, true);
        rt_ctx(&t, N_BOOTSTRAP, &c);
        assert_null(step_rainbond.skip_reason(&c));
        assert_int_equal(step_rainbond.render(&c, &r), 0);
        yq_load(&q, values_of(&r)->content);
        assert_int_equal(q.n, 1);
        d = &q.docs[0];
        assert_yq_keys(d, "", "operator,Cluster");
        assert_yq_keys(d, "operator", "image");
        assert_yq_keys(d, "operator/image", "name");
        assert_yq(d, "operator/image/name", "goodrain.me:5000/rainbond/rainbond-operator");
        assert_yq_keys(d, "Cluster", "rainbondImageRepository,gatewayIngressIPs,nodesForGateway,"
                                     "nodesForChaos,containerdRuntimePath,imageHub,regionDatabase,"
                                     "uiDatabase");
        assert_yq(d, "Cluster/rainbondImageRepository", "goodrain.me:5000/rainbond");
        assert_yq(d, "Cluster/gatewayIngressIPs", "192.0.2.100");
        check_nodes(d);
        assert_yq(d, "Cluster/containerdRuntimePath", "/var/run/k3s/containerd");
        assert_yq_keys(d, "Cluster/imageHub", "enable,domain,namespace,username,password");
        assert_yq(d, "Cluster/imageHub/enable", "true");
        assert_yq(d, "Cluster/imageHub/domain", "goodrain.me:5000");
        assert_yq(d, "Cluster/imageHub/namespace", "rainbond");
        assert_yq(d, "Cluster/imageHub/username", "admin");
        assert_yq(d, "Cluster/imageHub/password", REG_PW);
        /* The MySQL primary (node-1), the Rainbond user and the sealed password. */
        check_db(d, "regionDatabase", "192.0.2.11", "3306", "region", "rainbond", DB_PW);
        check_db(d, "uiDatabase", "192.0.2.11", "3306", "console", "rainbond", DB_PW);
        yq_done(&q);

        assert_int_equal(r.n_commands, 2);
        assert_int_equal(asprintf_safe(&src, "%s/usr/share/rainboot/bundle/bin/helm", t.f.root), 0);
        assert_int_equal(asprintf_safe(&helm, "%s/usr/local/bin/helm", t.f.root), 0);
        assert_int_equal(asprintf_safe(&chart, "%s/usr/share/rainboot/bundle/charts/rainbond-6.0.0.tgz",
                                       t.f.root), 0);
        assert_int_equal(asprintf_safe(&values, "%s" VALUES, t.f.root), 0);
        assert_int_equal(asprintf_safe(&kc, "%s/etc/rancher/rke2/rke2.yaml", t.f.root), 0);
        {
                const char *want0[] = { "install", "-D", "-m", "0755", src, helm, NULL };
                const char *want1[] = { helm, "upgrade", "--install", "rainbond", chart,
                                        "--namespace", "rbd-system", "--create-namespace",
                                        "--kubeconfig", kc, "--values", values, NULL };

                for (size_t i = 0; want0[i] || r.commands[0][i]; i++)
                        assert_string_equal(r.commands[0][i], want0[i]);
                for (size_t i = 0; want1[i] || r.commands[1][i]; i++)
                        assert_string_equal(r.commands[1][i], want1[i]);
        }
        assert_int_equal(r.n_services, 0);
        fixture_done(&t.f);
}

static void test_external(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        struct rt t;
        struct step_ctx c;
        struct yq q;
        yaml_document_t *d;

        rt_load(&t, "kubeadm", external_yaml, true);
        rt_ctx(&t, N_BOOTSTRAP, &c);
        /* No in-cluster secrets needed: the external services bring their own. */
        write_text(t.f.root, "/state/secrets/cluster.env", "join_token=abcdef.0123456789abcdef\n");
        assert_int_equal(step_rainbond.render(&c, &r), 0);
        yq_load(&q, values_of(&r)->content);
        d = &q.docs[0];
        assert_yq_keys(d, "", "operator,Cluster");
        assert_yq(d, "operator/image/name", "registry.example.com:8443/team/rainbond/rainbond-operator");
        assert_yq_keys(d, "Cluster", "rainbondImageRepository,gatewayIngressIPs,nodesForGateway,"
                                     "nodesForChaos,containerdRuntimePath,imageHub,regionDatabase,"
                                     "uiDatabase");
        assert_yq(d, "Cluster/rainbondImageRepository", "registry.example.com:8443/team/rainbond");
        assert_yq(d, "Cluster/gatewayIngressIPs", "198.51.100.7");
        check_nodes(d);
        assert_yq(d, "Cluster/containerdRuntimePath", "/run/containerd");
        assert_yq_keys(d, "Cluster/imageHub", "enable,domain,namespace,username,password");
        assert_yq(d, "Cluster/imageHub/enable", "true");
        assert_yq(d, "Cluster/imageHub/domain", "registry.example.com:8443");
        assert_yq(d, "Cluster/imageHub/namespace", "team/rainbond");
        assert_yq(d, "Cluster/imageHub/username", "robot");
        assert_yq(d, "Cluster/imageHub/password", "ext'reg pw");
        check_db(d, "regionDatabase", "db.example.com", "3307", "rb_region", "rb", "ext-db: pw");
        check_db(d, "uiDatabase", "db.example.com", "3307", "rb_console", "rb", "ext-db: pw");
        yq_done(&q);
        /* kubeadm's admin kubeconfig for helm. */
        assert_int_equal(r.n_commands, 2);
        assert_true(endswith(r.commands[1][9], "/etc/kubernetes/admin.conf"));
        fixture_done(&t.f);
}

/* No helm in the bundle: the values are still written, the reason is in them, no command. */
static void test_without_helm(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        struct rt t;
        struct step_ctx c;

        rt_load(&t, "rke2", in_cluster_yaml, false);
        rt_ctx(&t, N_BOOTSTRAP, &c);
        assert_int_equal(step_rainbond.render(&c, &r), 0);
        assert_int_equal(r.n_commands, 0);
        assert_non_null(strstr(values_of(&r)->content,
                               "helm: no helm binary in the offline bundle (/usr/share/rainboot/bundle.json)"));
        fixture_done(&t.f);
}

static void test_skips(void **state _unused_) {
        struct rt t;
        struct step_ctx c;

        rt_load(&t, "rke2", in_cluster_yaml, true);
        for (size_t i = 0; i < t.f.plan->n; i++) {
                rt_ctx(&t, i, &c);
                if (i == N_BOOTSTRAP)
                        assert_null(step_rainbond.skip_reason(&c));
                else
                        assert_string_equal(step_rainbond.skip_reason(&c),
                                            "not the bootstrap master (Rainbond is installed once, "
                                            "from there)");
        }
        fixture_done(&t.f);
}

/* Without the in-cluster database password there is nothing to give Rainbond. */
static void test_needs_db_secret(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        struct rt t;
        struct step_ctx c;

        rt_load(&t, "rke2", in_cluster_yaml, true);
        rt_ctx(&t, N_BOOTSTRAP, &c);
        write_text(t.f.root, "/state/secrets/cluster.env", "registry_password=x\n");
        assert_int_equal(step_rainbond.render(&c, &r), -ENOENT);
        fixture_done(&t.f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_in_cluster),
                cmocka_unit_test(test_external),
                cmocka_unit_test(test_without_helm),
                cmocka_unit_test(test_skips),
                cmocka_unit_test(test_needs_db_secret),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* keepalived and haproxy steps: rendered files checked field by field from a fixture view,
 * config and elected plan; the configs pass `keepalived -t` / `haproxy -c` when the tools
 * are installed. Writes only under a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sys/stat.h>

#include "config.h"
#include "elect.h"
#include "steps.h"
#include "util.h"
#include "view_json.h"

static const char *const base_yaml = "cluster:\n"
                                     "  name: t\n"
                                     "  token: test-token-0123456789\n"
                                     "  expected_nodes: 3\n"
                                     "vip:\n"
                                     "  address: 192.0.2.100/24\n"
                                     "  router_id: 61\n";

#include "step_fixture.h"

static size_t gateway_count(const struct role_plan *p) {
        size_t n = 0;

        for (size_t i = 0; i < p->n; i++)
                n += (p->nodes[i].roles & ROLE_GATEWAY) && p->nodes[i].vrrp_priority > 0;
        return n;
}

static void test_keepalived_fields(void **state _unused_) {
        struct fixture f = {};

        fixture_load(&f, "three-nodes.json", NULL);
        assert_int_equal(gateway_count(f.plan), 3);
        for (size_t i = 0; i < f.plan->n; i++) {
                _cleanup_(step_render_done) struct step_render r = {};
                _cleanup_free_ char *want = NULL, *check_path = NULL;
                const struct node_plan *np = &f.plan->nodes[i];
                struct step_ctx c;
                const struct step_file *conf, *script;
                const char *peers;

                ctx_for(&f, i, &c);
                assert_null(step_keepalived.skip_reason(&c));
                assert_int_equal(step_keepalived.render(&c, &r), 0);
                conf = find_file(&r, "/etc/keepalived/keepalived.conf");
                script = find_file(&r, "/etc/keepalived/rainboot-check-gateway");
                assert_non_null(conf);
                assert_non_null(script);
                assert_true(startswith(conf->path, f.root));
                assert_int_equal(conf->mode, 0644);
                assert_int_equal(script->mode, 0755);

                assert_line(conf->content, "vrrp_version 3");
                assert_line(conf->content, "state BACKUP");
                assert_line(conf->content, "interface eth0");
                assert_line(conf->content, "virtual_router_id 61");
                assert_int_equal(asprintf_safe(&want, "priority %u", np->vrrp_priority), 0);
                assert_line(conf->content, want);
                assert_line(conf->content, "advert_int 0.1");
                assert_line(conf->content, "nopreempt");
                assert_null(line_with(conf->content, "preempt_delay"));
                assert_null(line_with(conf->content, "state MASTER"));
                free(want);
                assert_int_equal(asprintf_safe(&want, "unicast_src_ip 192.0.2.1%zu", i + 1), 0);
                assert_line(conf->content, want);
                /* The peers are the other two gateways, never this node. */
                peers = strstr(conf->content, "unicast_peer {\n");
                assert_non_null(peers);
                for (size_t k = 0; k < 3; k++) {
                        char addr[32];
                        const char *at;

                        snprintf(addr, sizeof addr, "        192.0.2.1%zu\n", k + 1);
                        at = strstr(peers, addr);
                        if (k == i)
                                assert_true(!at || at > strchr(peers, '}'));
                        else
                                assert_true(at && at < strchr(peers, '}'));
                }
                assert_line(conf->content, "garp_master_refresh 60");
                assert_line(conf->content, "192.0.2.100/24 dev eth0");
                assert_line(conf->content, "rainboot_gateway");
                assert_int_equal(asprintf_safe(&check_path, "script \"%s\"", script->path), 0);
                assert_line(conf->content, check_path);
                assert_line(conf->content, "enable_script_security");

                /* The track script: haproxy's API port always, every gateway port once ready. */
                assert_non_null(strstr(script->content, "port_open 16443 || exit 1\n"));
                assert_non_null(strstr(script->content, "/var/lib/rainboot/gateway-ready"));
                assert_non_null(strstr(script->content, "for p in 80 443 6060 7070 8443; do"));

                /* Validated after writing, and run as a service in the foreground. */
                assert_int_equal(r.n_commands, 1);
                assert_string_equal(r.commands[0][0], "keepalived");
                assert_string_equal(r.commands[0][1], "--config-test");
                assert_int_equal(r.n_services, 1);
                assert_string_equal(r.services[0].unit, "keepalived.service");
                assert_true(strv_contains(r.services[0].argv, "--dont-fork"));
        }
        fixture_done(&f);
}

static void test_priorities_follow_plan(void **state _unused_) {
        struct fixture f = {};
        unsigned seen = 0;

        fixture_load(&f, "three-nodes.json", NULL);
        for (size_t i = 0; i < f.plan->n; i++) {
                _cleanup_(step_render_done) struct step_render r = {};
                struct step_ctx c;
                const char *p;

                ctx_for(&f, i, &c);
                assert_int_equal(step_keepalived.render(&c, &r), 0);
                p = line_with(find_file(&r, "keepalived.conf")->content, "priority");
                assert_non_null(p);
                seen |= 1u << ((VRRP_PRIORITY_FIRST - atoi(p + strlen("priority "))) / VRRP_PRIORITY_STEP);
        }
        assert_int_equal(seen, 7); /* the first three priorities, each once */
        fixture_done(&f);
}

static void test_skips(void **state _unused_) {
        struct fixture f = {}, g = {};
        size_t non_gateways = 0;

        fixture_load(&f, "five-nodes.json", NULL);
        for (size_t i = 0; i < f.plan->n; i++) {
                struct step_ctx c;
                bool gw = f.plan->nodes[i].roles & ROLE_GATEWAY;

                ctx_for(&f, i, &c);
                assert_true(!gw == !!step_keepalived.skip_reason(&c));
                assert_true(!gw == !!step_haproxy.skip_reason(&c));
                non_gateways += !gw;
        }
        assert_true(non_gateways > 0);
        fixture_done(&f);

        /* An external load balancer replaces the VIP: no keepalived, no haproxy anywhere. */
        fixture_load(&g, "three-nodes.json", NULL);
        config_free(g.cfg);
        {
                static const char *const yaml = "cluster:\n"
                                                "  name: t\n"
                                                "  token: test-token-0123456789\n"
                                                "  expected_nodes: 3\n"
                                                "external:\n"
                                                "  load_balancer: {address: 192.0.2.10}\n";
                struct diag d = {};

                assert_int_equal(config_parse_string(yaml, strlen(yaml), "lb.yaml", &g.cfg, &d), 0);
                diag_clear(&d);
        }
        for (size_t i = 0; i < g.plan->n; i++) {
                struct step_ctx c;

                ctx_for(&g, i, &c);
                assert_non_null(strstr(step_keepalived.skip_reason(&c), "external.load_balancer"));
                assert_non_null(strstr(step_haproxy.skip_reason(&c), "external.load_balancer"));
        }
        fixture_done(&g);
}

static void test_no_interface(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        struct fixture f = {};
        struct step_ctx c;

        fixture_load(&f, "three-nodes.json", NULL);
        ctx_for(&f, 0, &c);
        c.vip_iface = NULL;
        assert_int_equal(step_keepalived.render(&c, &r), -ENODEV);
        fixture_done(&f);
}

static void test_haproxy_fields(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        struct fixture f = {};
        struct step_ctx c;
        const struct step_file *cfg;
        size_t masters = 0;

        fixture_load(&f, "five-nodes.json", NULL);
        for (size_t i = 0; i < f.plan->n; i++)
                if (f.plan->nodes[i].roles & ROLE_GATEWAY) {
                        ctx_for(&f, i, &c);
                        break;
                }
        assert_int_equal(step_haproxy.render(&c, &r), 0);
        cfg = find_file(&r, "/etc/haproxy/haproxy.cfg");
        assert_non_null(cfg);
        assert_line(cfg->content, "mode tcp");
        assert_line(cfg->content, "bind :16443");
        assert_null(strstr(cfg->content, "bind :6443"));
        for (size_t i = 0; i < f.plan->n; i++) {
                const struct node_info *ni = step_node_info(&c, f.plan->nodes[i].id);
                char addr[64], *at;

                snprintf(addr, sizeof addr, " %s:6443 check\n", inet_ntoa(ni->addrs[0]));
                at = strstr(cfg->content, addr);
                if (f.plan->nodes[i].roles & ROLE_MASTER) {
                        assert_non_null(at);
                        masters++;
                } else
                        assert_null(at);
        }
        assert_int_equal(masters, 3);
        assert_string_equal(r.commands[0][0], "haproxy");
        assert_string_equal(r.commands[0][1], "-c");
        fixture_done(&f);
}

static bool have(const char *tool) {
        _cleanup_free_ char *cmd = NULL;

        return asprintf_safe(&cmd, "command -v %s >/dev/null", tool) == 0 && system(cmd) == 0;
}

/* Write the rendered files and run the step's own validation command on them. */
static void validate_step(const struct step *s, const char *tool) {
        struct fixture f = {};

        if (!have(tool)) {
                fixture_load(&f, "three-nodes.json", NULL);
                fixture_done(&f);
                skip();
        }
        fixture_load(&f, "three-nodes.json", NULL);
        for (size_t i = 0; i < f.plan->n; i++) {
                _cleanup_(step_render_done) struct step_render r = {};
                _cleanup_free_ char *out = NULL;
                struct step_ctx c;

                ctx_for(&f, i, &c);
                assert_int_equal(s->render(&c, &r), 0);
                for (size_t k = 0; k < r.n_files; k++) {
                        _cleanup_free_ char *dir = strdup(r.files[k].path);

                        *strrchr(dir, '/') = 0;
                        assert_int_equal(mkdir_parents(dir, 0755), 0);
                        assert_int_equal(write_file_atomic(r.files[k].path, r.files[k].content,
                                                           strlen(r.files[k].content),
                                                           r.files[k].mode),
                                         0);
                }
                if (run_command(r.commands[0], &out) != 0)
                        fail_msg("%s rejects the rendered config:\n%s", tool, out);
        }
        fixture_done(&f);
}

/* A cluster with one gateway: no unicast peers, so no unicast_src_ip either (keepalived
 * refuses the one without the other), and keepalived -t accepts the file. */
static void test_lone_gateway(void **state _unused_) {
        _cleanup_(step_render_done) struct step_render r = {};
        _cleanup_free_ char *out = NULL;
        struct fixture f = {};
        const struct step_file *conf;
        struct step_ctx c;

        fixture_load(&f, "three-nodes.json", NULL);
        for (size_t i = 1; i < f.plan->n; i++)
                f.plan->nodes[i].roles &= ~(unsigned)ROLE_GATEWAY;
        ctx_for(&f, 0, &c);
        assert_int_equal(step_keepalived.render(&c, &r), 0);
        conf = find_file(&r, "/etc/keepalived/keepalived.conf");
        assert_non_null(conf);
        assert_null(strstr(conf->content, "unicast_src_ip"));
        assert_null(strstr(conf->content, "unicast_peer"));
        assert_line(conf->content, "state BACKUP");
        if (have("keepalived")) {
                for (size_t k = 0; k < r.n_files; k++) {
                        _cleanup_free_ char *dir = strdup(r.files[k].path);

                        *strrchr(dir, '/') = 0;
                        assert_int_equal(mkdir_parents(dir, 0755), 0);
                        assert_int_equal(write_file_atomic(r.files[k].path, r.files[k].content,
                                                           strlen(r.files[k].content),
                                                           r.files[k].mode),
                                         0);
                }
                if (run_command(r.commands[0], &out) != 0)
                        fail_msg("keepalived rejects the lone gateway's config:\n%s", out);
        }
        fixture_done(&f);
}

static void test_keepalived_config_test(void **state _unused_) {
        validate_step(&step_keepalived, "keepalived");
}

static void test_haproxy_config_test(void **state _unused_) {
        validate_step(&step_haproxy, "haproxy");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keepalived_fields),
                cmocka_unit_test(test_priorities_follow_plan),
                cmocka_unit_test(test_skips),
                cmocka_unit_test(test_no_interface),
                cmocka_unit_test(test_haproxy_fields),
                cmocka_unit_test(test_lone_gateway),
                cmocka_unit_test(test_keepalived_config_test),
                cmocka_unit_test(test_haproxy_config_test),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

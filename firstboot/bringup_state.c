/* SPDX-License-Identifier: MIT */
/* What the bring-up starts from: the plan and view that discovery committed to the state
 * directory, this node's place in them, and the interface the VIP goes on. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <json-c/json.h>
#include <net/if.h>

#include "json_util.h"
#include "log.h"
#include "steps.h"
#include "util.h"
#include "view_json.h"

static const struct step *const known_steps[] = {
        &step_keepalived,
        &step_haproxy,
        &step_mysql,
        &step_mysql_external,
        &step_etcd,
        &step_pki,
        &step_registry,
        &step_registry_trust,
        &step_images,
        &step_kubernetes,
        &step_rainbond,
};

const struct step *const *steps_all(size_t *ret_n) {
        *ret_n = ELEMENTSOF(known_steps);
        return known_steps;
}

static int get_int(struct json_object *o, const char *key, int64_t min, int64_t max,
                   int64_t *ret) {
        struct json_object *v;
        int64_t x;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return -EINVAL;
        x = json_object_get_int64(v);
        if (x < min || x > max)
                return -EINVAL;
        *ret = x;
        return 0;
}

int role_plan_from_json(const char *text, const char *name, struct role_plan **ret) {
        _cleanup_(json_object_putp) struct json_object *o = json_tokener_parse(text);
        _cleanup_role_plan_ struct role_plan *p = NULL;
        struct json_object *nodes, *v;
        uint8_t digest[DIGEST_LEN];
        int64_t epoch;
        size_t n;
        int r;

        if (!o || !json_object_is_type(o, json_type_object))
                return log_error_errno(-EINVAL, "%s: not a JSON object", name);
        if (get_int(o, "epoch", 0, UINT32_MAX, &epoch) < 0)
                return log_error_errno(-EINVAL, "%s: epoch: expected an integer", name);
        if (!json_object_object_get_ex(o, "digest", &v) ||
            hex_decode(json_object_get_string(v), digest, DIGEST_LEN) < 0)
                return log_error_errno(-EINVAL, "%s: digest: expected 64 hex digits", name);
        if (!json_object_object_get_ex(o, "nodes", &nodes) ||
            !json_object_is_type(nodes, json_type_array))
                return log_error_errno(-EINVAL, "%s: nodes: expected an array", name);
        n = json_object_array_length(nodes);
        r = role_plan_new((uint32_t)epoch, n, &p);
        if (r < 0)
                return log_error_errno(r, "%s: %zu nodes: %m", name, n);
        for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(nodes, i), *id, *hn;
                struct node_plan *np = &p->nodes[i];
                int64_t roles, flags, prio;

                if (!json_object_is_type(e, json_type_object) ||
                    !json_object_object_get_ex(e, "id", &id) ||
                    node_id_from_hex(json_object_get_string(id), np->id) < 0)
                        return log_error_errno(-EINVAL, "%s: nodes[%zu].id: expected 32 hex digits",
                                               name, i);
                if (get_int(e, "role_bits", 0, ROLE_ALL, &roles) < 0 ||
                    get_int(e, "flags", 0, UINT8_MAX, &flags) < 0 ||
                    get_int(e, "vrrp_priority", 0, UINT8_MAX, &prio) < 0)
                        return log_error_errno(-EINVAL,
                                               "%s: nodes[%zu]: role_bits, flags and vrrp_priority "
                                               "must be small integers", name, i);
                np->roles = (uint32_t)roles;
                np->flags = (uint8_t)flags;
                np->vrrp_priority = (uint8_t)prio;
                if (json_object_object_get_ex(e, "hostname", &hn) &&
                    json_object_is_type(hn, json_type_string))
                        snprintf(np->hostname, sizeof np->hostname, "%s", json_object_get_string(hn));
        }
        r = role_plan_finalize(p);
        if (r < 0)
                return log_error_errno(r, "%s: nodes: duplicate node ids", name);
        if (memcmp(digest, p->digest, DIGEST_LEN) != 0)
                return log_error_errno(-EBADMSG,
                                       "%s: the digest does not match the plan's content: the file "
                                       "was changed or damaged; rerun discovery", name);
        *ret = TAKE_PTR(p);
        return 0;
}

void bringup_state_done(struct bringup_state *s) {
        role_plan_free(s->plan);
        view_done(&s->view);
        *s = (struct bringup_state){};
}

int bringup_state_load(const char *state_dir, const uint8_t self_id[NODE_ID_LEN],
                       struct bringup_state *ret) {
        _cleanup_free_ char *plan_path = NULL, *view_path = NULL, *text = NULL, *error = NULL;
        _cleanup_(bringup_state_done) struct bringup_state s = {};
        char hex[2 * NODE_ID_LEN + 1];
        int r;

        if (asprintf_safe(&plan_path, "%s/plan.json", state_dir) < 0 ||
            asprintf_safe(&view_path, "%s/view.json", state_dir) < 0)
                return -ENOMEM;
        r = read_full_file(plan_path, &text, NULL);
        if (r == -ENOENT)
                return log_error_errno(r, "No committed plan at %s: run `firstboot discover` until "
                                          "the cluster forms first.", plan_path);
        if (r < 0)
                return log_error_errno(r, "Cannot read %s: %m", plan_path);
        r = role_plan_from_json(text, plan_path, &s.plan);
        if (r < 0)
                return r;
        r = view_from_json_file(view_path, &s.view, &error);
        if (r == -EINVAL && error)
                return log_error_errno(r, "%s", error);
        if (r < 0)
                return log_error_errno(r, "Cannot read the committed view %s: %m", view_path);

        node_id_to_hex(self_id, hex);
        s.self = role_plan_find(s.plan, self_id);
        if (!s.self)
                return log_error_errno(-ENOENT,
                                       "This node (%s) is not in the committed plan %s: it is a late "
                                       "joiner and waits to be welcomed by discovery.", hex,
                                       plan_path);
        for (size_t i = 0; i < s.view.n; i++)
                if (node_id_cmp(s.view.nodes[i].id, self_id) == 0)
                        s.self_info = &s.view.nodes[i];
        for (size_t i = 0; i < s.plan->n; i++) {
                bool found = false;

                for (size_t k = 0; k < s.view.n && !found; k++)
                        found = node_id_cmp(s.view.nodes[k].id, s.plan->nodes[i].id) == 0;
                if (!found) {
                        node_id_to_hex(s.plan->nodes[i].id, hex);
                        return log_error_errno(-EINVAL, "%s: plan member %s is missing; the plan "
                                                        "and the view do not belong together.",
                                               view_path, hex);
                }
        }
        *ret = s;
        s = (struct bringup_state){};
        return 0;
}

int vip_iface_resolve(const struct config *cfg, const struct in_addr *addr, char **ret) {
        struct ifaddrs *ifa = NULL;
        char *name = NULL;

        if (cfg->vip_interface && !streq(cfg->vip_interface, "auto"))
                name = strdup(cfg->vip_interface);
        else if (cfg->discovery_interface && !streq(cfg->discovery_interface, "auto"))
                name = strdup(cfg->discovery_interface);
        else if (addr && getifaddrs(&ifa) == 0) {
                for (struct ifaddrs *i = ifa; i && !name; i = i->ifa_next)
                        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
                            ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == addr->s_addr)
                                name = strdup(i->ifa_name);
                freeifaddrs(ifa);
                if (!name) {
                        *ret = NULL;
                        return 0;
                }
        } else {
                *ret = NULL;
                return 0;
        }
        if (!name)
                return -ENOMEM;
        *ret = name;
        return 0;
}

void step_ctx_init(struct step_ctx *c, const struct config *cfg, const struct bringup_state *s,
                   const char *root, const char *state_dir) {
        *c = (struct step_ctx){
                .cfg = cfg,
                .plan = s->plan,
                .view = &s->view,
                .self = s->self,
                .self_info = s->self_info,
                .root = root ? root : "",
                .state_dir = state_dir,
                .supervisor = SVCMGR_SYSTEMD,
        };
}

const struct node_info *step_node_info(const struct step_ctx *c, const uint8_t id[NODE_ID_LEN]) {
        for (size_t i = 0; c->view && i < c->view->n; i++)
                if (node_id_cmp(c->view->nodes[i].id, id) == 0)
                        return &c->view->nodes[i];
        return NULL;
}

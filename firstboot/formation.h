/* SPDX-License-Identifier: MIT */
/* Formation (DESIGN.md section 3, rules in firstboot/model/README.md): the propose → lock
 * → commit agreement on one plan, as a pure state machine. The caller feeds it the live
 * view and a monotonic clock; it never does I/O, reads a clock or touches a socket. The
 * same rules are model-checked in firstboot/model/formation.pml. */
#pragma once

#include <stdint.h>

#include "view.h"

/* Proposals remembered per boot for the join rule. */
#define FORMATION_HISTORY_MAX 32
/* Plans learned from PLAN messages of committed members. */
#define FORMATION_LEARNED_MAX 8
/* Largest member set formation_load() accepts. */
#define FORMATION_MEMBERS_MAX 1024

struct formation_params {
        unsigned expected_nodes; /* fewer live nodes never propose; >= 1 */
        uint64_t settle_ms;      /* membership must stay unchanged this long to propose */
};

/* Digest of the plan for exactly these members (sorted by id; their state and digest
 * fields are zeroed). Must be deterministic across nodes: the daemon passes a function
 * that runs elect() and returns the role plan digest. */
typedef int (*plan_digest_fn)(const struct view *members, void *userdata, uint8_t ret[DIGEST_LEN]);

struct formation;

int formation_new(const uint8_t self_id[NODE_ID_LEN], const struct formation_params *params,
                  plan_digest_fn fn, void *userdata, struct formation **ret);
struct formation *formation_free(struct formation *f);
static inline void formation_freep(struct formation **f) { formation_free(*f); }
#define _cleanup_formation_ __attribute__((cleanup(formation_freep)))

/* Apply the rules once. `live` is the live view: sorted by id, holding self (whose
 * state/digest are ignored) and every peer heard within the expiry window with its last
 * announced state and digest. Returns 1 if what this node announces (state, digest)
 * changed, 0 if not, -EINVAL for a malformed view, or the digest function's error.
 * When the result is LOCKED or COMMITTED, persist (formation_save) before announcing. */
int formation_step(struct formation *f, const struct view *live, uint64_t now_ms);

enum node_state formation_state(const struct formation *f);
/* The digest this node announces; NULL while DISCOVERING. */
const uint8_t *formation_digest(const struct formation *f);
/* Members of the proposed, locked or committed plan as recorded when it was proposed
 * (node facts included); NULL while DISCOVERING. After formation_load() or for a plan
 * adopted from a PLAN message only the ids are set. */
const struct view *formation_members(const struct formation *f);

/* Record the member ids of a plan received in a PLAN message from a committed member.
 * The caller has checked that the content hashes to `digest`. Used for adoption only. */
int formation_learn_plan(struct formation *f, const uint8_t digest[DIGEST_LEN],
                         const struct view *members);

/* Operator release (`firstboot discover --reset`): forget the lock and every earlier
 * proposal, and propose again once the membership settles. -EBUSY if this node or any
 * peer in `live` announces COMMITTED. Returns 1 if a lock was released, 0 if none held.
 * Not covered by the safety proof: a committed peer that is unheard is not seen. */
int formation_reset(struct formation *f, const struct view *live);

/* Text form of the lock or commit (state, digest, member ids); for an unlocked node just
 * the state. formation_load() accepts only this form, before the first step, and refuses
 * anything else with -EINVAL (-EBUSY if f already holds a lock). */
int formation_save(const struct formation *f, char **ret_text);
int formation_load(struct formation *f, const char *text);

/* SPDX-License-Identifier: MIT */
/* Formation rules (firstboot/model/README.md, firstboot/formation.c) for N = 4 nodes
 * with expected_nodes = 3. A plan, and its digest, is the member set as a bit mask: the
 * plans of >= 3 of 4 nodes are 7, 11, 13, 14 and 15, and any two of them intersect, so
 * "no two different committed plans share a node" is "every commit is of one plan".
 *
 * spin -D switches:
 *   (none)           safety: arbitrary proposals, a network that loses, duplicates and
 *                    reorders, up to MAX_CRASH crash-stops at any point
 *   LIVE             liveness: no loss, no crash; each node's view is a set of >= 3
 *                    nodes naming it, then grows to all; checks that a state where no
 *                    rule can fire any more has a plan committed by all its members
 *   LIVE TERMINATION the same model without the check, for pan -l: no cycle, so every
 *                    run is finite
 *   LIVE SHRINK      a view may also shrink once (a peer expires, then returns); shows
 *                    the stuck split lock that only `discover --reset` undoes; must fail
 *   REACH            sanity: asserts that no plan is ever committed by all its members;
 *                    must fail, showing that the checked runs do form
 *   BROKEN_UNLOCK    wrong rule: a locked node that hears no COMMITTED (always possible
 *                    under loss) releases its lock, as DESIGN.md's timeout did; must fail
 *   BROKEN_ONEPHASE  wrong rule: commit once every member proposes or locks the plan,
 *                    without waiting for every lock; must fail */

#define N 4
#define EXPECTED 3
#define ALL 15
#ifndef MAX_CRASH
#define MAX_CRASH 1
#endif

#define DISC 0
#define PROP 1
#define LOCK 2
#define COMM 3

#define bit(x, k) (((x) >> (k)) & 1)

byte st[N];     /* state of each node */
byte dg[N];     /* plan it is locked on or committed to; in LIVE also the one it proposes */
short hist[N];  /* bit p: PROPOSING(p) announced in this boot: the join rule's history */
byte committed; /* monitor: the plan of the first commit, 0 before any */
bool formed;    /* some plan is committed by all its members */
#ifdef LIVE
byte view[N];   /* membership of each node's view */
#ifdef SHRINK
bool shrunk[N];
#endif
#else
byte crashes;
#endif

#ifdef BROKEN_UNLOCK
short sentL[N]; /* bit p: LOCKED(p) announced, even if released since */
#define was_locked(m, d) bit(sentL[m], d)
#else
/* A lock is never released and a locked node commits only its own plan, so what a node
 * ever announced as LOCKED or COMMITTED is its current state. */
#define was_locked(m, d) (st[m] >= LOCK && dg[m] == (d))
#endif
#define was_committed(m, d) (st[m] == COMM && dg[m] == (d))

/* The network. Each receiver's bag holds every announcement ever sent; the receiver may
 * take any of them at any time, again and again, or never (loss, duplication,
 * reordering), independently for each sender. So every combination of announcements
 * already sent is a possible view, and a rule is enabled exactly when the announcements
 * it needs were sent: "n heard from m that m is in state >= s for plan d" is a predicate
 * on what m sent (README.md, "Network"). */
#define heard(n, m, s, d) \
        ((m) != (n) && (((s) <= PROP && bit(hist[m], d)) || ((s) <= LOCK && was_locked(m, d)) || \
                        was_committed(m, d)))
/* The same question asked of m's current announcement, i.e. once everything m sent has
 * arrived: used by the liveness check. */
#define heard_now(n, m, s, d) ((m) != (n) && st[m] >= (s) && dg[m] == (d))

/* Every member of plan d other than n is heard in a state >= s for d. */
#define MEMB(H, n, m, s, d) (!bit(d, m) || (m) == (n) || H(n, m, s, d))
#define ALL_MEMBERS(H, n, s, d) \
        (MEMB(H, n, 0, s, d) && MEMB(H, n, 1, s, d) && MEMB(H, n, 2, s, d) && MEMB(H, n, 3, s, d))
#define ANY_PEER(H, n, s, d) (H(n, 0, s, d) || H(n, 1, s, d) || H(n, 2, s, d) || H(n, 3, s, d))

/* The rules' guards, for node n and plan p. */
#define can_lock(H, n, p) (ALL_MEMBERS(H, n, PROP, p))
#define can_join(H, n, p) (st[n] <= PROP && bit(p, n) && bit(hist[n], p) && ANY_PEER(H, n, LOCK, p))
#ifdef BROKEN_ONEPHASE
#define can_commit(H, n) (st[n] == LOCK && ALL_MEMBERS(H, n, PROP, dg[n]))
#else
#define can_commit(H, n) (st[n] == LOCK && ALL_MEMBERS(H, n, LOCK, dg[n]))
#endif
#define can_adopt(H, n, p) (st[n] != COMM && bit(p, n) && ANY_PEER(H, n, COMM, p))

#define committed_by(m, d) (!bit(d, m) || (st[m] == COMM && dg[m] == (d)))
#define all_committed(d) (committed_by(0, d) && committed_by(1, d) && committed_by(2, d) && committed_by(3, d))

#define i _pid

inline lock(p) {
        st[i] = LOCK;
        dg[i] = p;
#ifdef BROKEN_UNLOCK
        sentL[i] = sentL[i] | (1 << p);
#endif
}

inline commit(p) {
        assert(committed == 0 || committed == p);
        committed = p;
        st[i] = COMM;
        dg[i] = p;
        formed = formed || all_committed(p);
#ifdef REACH
        assert(!formed);
#endif
}

/* Join: an unlocked node hears LOCKED(p) or COMMITTED(p) for a plan of its own history
 * that names it, and locks p. */
#define JOIN(p) :: atomic { can_join(heard, i, p) -> lock(p) }

/* Adoption: a node hears COMMITTED(p) for a plan naming it and commits p. A node locked
 * on another plan must never get here: the assert checks that it cannot. */
#define ADOPT(p) \
        :: atomic { can_adopt(heard, i, p) -> \
                assert(st[i] != LOCK || dg[i] == p); \
                commit(p) }

#ifndef LIVE
/* Proposal of any plan naming i (views are abstract), then the lock rule: lock it when
 * every member announces PROPOSING, LOCKED or COMMITTED of it. The plan a proposer
 * currently announces matters only to its own lock rule, and it may re-propose an
 * earlier plan at any time, so "propose p, maybe lock p" as one step covers a lock that
 * comes any time after the proposal, without keeping the current proposal. */
#define PROPOSE(p) \
        :: atomic { st[i] <= PROP && bit(p, i) -> \
                st[i] = PROP; \
                hist[i] = hist[i] | (1 << p); \
                if \
                :: can_lock(heard, i, p) -> lock(p) \
                :: true \
                fi }
#endif

#define FOR_PLANS(X) X(7) X(11) X(13) X(14) X(15)

#ifdef LIVE
/* A node's first view of at least EXPECTED nodes: any such set naming it. (Smaller
 * views are not modelled: with them a node only discovers.) */
#define FIRST_VIEW \
        if \
        :: view[i] = ALL \
        :: view[i] = ALL & ~(1 << ((i + 1) % N)) \
        :: view[i] = ALL & ~(1 << ((i + 2) % N)) \
        :: view[i] = ALL & ~(1 << ((i + 3) % N)) \
        fi
#endif

active [N] proctype node() {
#ifdef LIVE
        FIRST_VIEW;
#endif
end:
        do
#ifdef LIVE
        /* The view reaches all nodes: the membership changed, an unlocked node is
         * unsettled again. */
        :: atomic { view[i] != ALL ->
                view[i] = ALL;
                if
                :: st[i] <= PROP -> st[i] = DISC; dg[i] = 0
                :: else
                fi }
#ifdef SHRINK
        :: atomic { !shrunk[i] && view[i] == ALL ->
                shrunk[i] = true;
                view[i] = ALL & ~(1 << ((i + 1) % N));
                if
                :: st[i] <= PROP -> st[i] = DISC; dg[i] = 0
                :: else
                fi }
#endif
        /* Settled: propose the plan of the view. */
        :: atomic { st[i] <= PROP && dg[i] != view[i] ->
                st[i] = PROP; dg[i] = view[i]; hist[i] = hist[i] | (1 << view[i]) }
        :: atomic { st[i] == PROP && can_lock(heard, i, dg[i]) -> lock(dg[i]) }
#else
        FOR_PLANS(PROPOSE)
        /* Crash-stop: the node takes no further step; what it sent may still arrive. */
        :: atomic { crashes < MAX_CRASH -> crashes++; break }
#endif
        FOR_PLANS(JOIN)
        /* Commit: every member announces LOCKED or COMMITTED of our lock. */
        :: atomic { can_commit(heard, i) -> commit(dg[i]) }
        FOR_PLANS(ADOPT)
#ifdef BROKEN_UNLOCK
        :: atomic { st[i] == LOCK -> st[i] = PROP; dg[i] = 0 }
#endif
        od
}

#ifdef LIVE
/* Node n can still act once every announcement has arrived (heard_now), with its own
 * rules in the order of node() above. */
#define JOIN_NOW(n, p) can_join(heard_now, n, p)
#define ADOPT_NOW(n, p) can_adopt(heard_now, n, p)
#define ANY_PLAN(X, n) (X(n, 7) || X(n, 11) || X(n, 13) || X(n, 14) || X(n, 15))
#define can_act(n) \
        (view[n] != ALL || (st[n] <= PROP && dg[n] != view[n]) || \
         (st[n] == PROP && can_lock(heard_now, n, dg[n])) || ANY_PLAN(JOIN_NOW, n) || \
         can_commit(heard_now, n) || ANY_PLAN(ADOPT_NOW, n))

/* Every run is finite (README.md: each node changes view once, proposes at most twice,
 * locks and commits once), so it ends where nothing can act and every announcement has
 * arrived. Such an end must be formed: checked in every reachable state once every
 * node has its first view. */
#ifndef TERMINATION
never {
        do
        :: assert(view[0] == 0 || view[1] == 0 || view[2] == 0 || view[3] == 0 || formed || can_act(0) || can_act(1) || can_act(2) || can_act(3))
        od
}
#endif
#endif

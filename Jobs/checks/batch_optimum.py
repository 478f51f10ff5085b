#!/usr/bin/env python3
"""Exact-optimum check of the batch optimiser.

For generated small instances, `bloodmatch batch solve` prints the full candidate graph (every
eligible (order, unit) pair with its cost, in hundredths of a minute), the shipment charge, the
unserved penalties and the optimiser's and greedy's allocations. This script solves the same
problem exactly as a mixed-integer programme with HiGHS (scipy.optimize.milp):

    min  sum_e cost_e x_e + F sum_p y_p + sum_o penalty_o (q_o - sum_{e in o} x_e)
    s.t. sum_{e in o} x_e <= q_o      (order quantity)
         sum_{e at u} x_e <= 1        (no unit twice)
         x_e <= y_{p(e)}              (a pair used pays its shipment charge)
         x_e <= sum_{g at v} x_g      (stewardship: for each edge f = (o, v) of e's order whose unit
                                       is better-ranked and arrives within e's band, or arrives by
                                       the order's deadline while e's is late: v must then be used)
         sum_{limited e in o} x_e <= limit_o
         x, y binary

The stewardship rows are the plan's own rules (Data/SOURCES.md §S30) written out from each edge's
rank and ETA and each order's band tolerance and deadline; the plan is also checked against them
directly (no allocation may leave a preferred unit free), and the unconstrained optimum is solved
too, to show the rules bind (and what they cost).

and asserts that the optimiser's allocation is feasible and serves exactly as many units at each
urgency as the optimum, that its cost is within 1 % of the optimum (--tolerance) on every
instance, and that the plan's own claims hold on every instance: its lower bound and "proven
optimal" are statements about the whole problem (every eligible unit), so the bound must not be
above the optimum and a plan said to be proven optimal must cost the optimum (to rounding); its
candidate-level bound and "proven optimal over the candidates" must hold for the same MILP over
the plan's own candidate edges.

Two families of instances: the optimiser's own candidate limits (--instances), and lists cut to
one candidate per unit ordered (--cut-instances, `batch solve --candidates-per-unit 1
--minimum-candidates 0`), where the optimum often uses units beyond every order's cut.
"""
import argparse
import json
import subprocess
import sys

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix


def objective(inst, chosen):
    """(cost without penalties, served per urgency) of a set of (order, unit) pairs; checks feasibility."""
    edges = {(e["order"], e["unit"]): e for e in inst["edges"]}
    orders = {o["id"]: o for o in inst["orders"]}
    used_units, per_order, pairs, cost = set(), {}, set(), 0
    for c in chosen:
        key = (c["order"], c["unit"])
        if key not in edges:
            raise AssertionError(f"allocation {key} is not an eligible pair")
        if c["unit"] in used_units:
            raise AssertionError(f"unit {c['unit']} allocated twice")
        used_units.add(c["unit"])
        per_order[c["order"]] = per_order.get(c["order"], 0) + 1
        e = edges[key]
        pairs.add((e["centre"], e["hospital"]))
        cost += e["cost"]
    served = {}
    for oid, n in per_order.items():
        if n > orders[oid]["quantity"]:
            raise AssertionError(f"order {oid} got {n} > {orders[oid]['quantity']}")
        served[orders[oid]["urgency"]] = served.get(orders[oid]["urgency"], 0) + n
    return cost + len(pairs) * inst["shipment_cost"], served


def band_end(order, eta):
    """Where the band of a unit arriving at `eta` ends for `order`: the tolerance later, capped at
    the deadline when the unit arrives by it."""
    end = eta + order["band_minutes"]
    deadline = order["deadline_minutes"]
    return min(end, deadline) if deadline is not None and eta <= deadline else end


def preferences(inst, edges):
    """The stewardship rules as pairs (e, f) of edge positions of one order: allocating e requires
    f's unit to be allocated to some order. f is better-ranked and arrives within e's band, or e
    arrives after the order's deadline and f by it."""
    orders = {o["id"]: o for o in inst["orders"]}
    by_order = {}
    for j, e in enumerate(edges):
        by_order.setdefault(e["order"], []).append(j)
    pairs = []
    for oid, js in by_order.items():
        order = orders[oid]
        deadline = order["deadline_minutes"]
        for j in js:
            e = edges[j]
            late = deadline is not None and e["eta"] > deadline
            end = band_end(order, e["eta"])
            for k in js:
                f = edges[k]
                if k == j:
                    continue
                if (f["rank"] < e["rank"] and f["eta"] <= end) or (late and f["eta"] <= deadline):
                    pairs.append((j, k))
    return pairs


def breaches(inst, chosen):
    """Allocations that break the stewardship rules: a preferred unit of the same order left free."""
    edges = inst["edges"]
    at = {(e["order"], e["unit"]): j for j, e in enumerate(edges)}
    used = {c["unit"] for c in chosen}
    orders = {o["id"]: o for o in inst["orders"]}
    limited_held = {}
    for c in chosen:
        if edges[at[(c["order"], c["unit"])]]["limited"]:
            limited_held[c["order"]] = limited_held.get(c["order"], 0) + 1
    allocated = {(c["order"], c["unit"]) for c in chosen}
    out = []
    for j, k in preferences(inst, edges):
        e, f = edges[j], edges[k]
        if (e["order"], e["unit"]) not in allocated or f["unit"] in used:
            continue
        limit = orders[e["order"]]["limit"]
        if f["limited"] and not e["limited"] and limit is not None and limited_held.get(e["order"], 0) >= limit:
            continue
        out.append(f"{e['order']}: {e['unit']} rank {e['rank']} at {e['eta']:.0f} min while {f['unit']} rank {f['rank']} "
                   f"at {f['eta']:.0f} min is free")
    return out


def exact(inst, only=None, stewardship=True):
    """The optimum over inst's edges, or over those whose (order, unit) is in `only`; with
    `stewardship`, under the band and deadline rules (over inst's edges, which hold every eligible
    unit) and the per-request limit of limited units."""
    edges, orders = inst["edges"], inst["orders"]
    if only is not None:
        edges = [e for e in edges if (e["order"], e["unit"]) in only]
    order_ix = {o["id"]: i for i, o in enumerate(orders)}
    units = sorted({e["unit"] for e in edges})
    unit_ix = {u: i for i, u in enumerate(units)}
    pairs = sorted({(e["centre"], e["hospital"]) for e in edges})
    pair_ix = {p: i for i, p in enumerate(pairs)}
    ne, npairs = len(edges), len(pairs)
    if ne == 0:
        return [], 0
    c = np.zeros(ne + npairs)
    for j, e in enumerate(edges):
        c[j] = e["cost"] - orders[order_ix[e["order"]]]["penalty"]
    c[ne:] = inst["shipment_cost"]
    rows, cols, vals, lb, ub = [], [], [], [], []
    r = 0
    for i, o in enumerate(orders):
        js = [j for j, e in enumerate(edges) if order_ix[e["order"]] == i]
        if js:
            rows += [r] * len(js); cols += js; vals += [1] * len(js); lb.append(0); ub.append(o["quantity"]); r += 1
    by_unit = {}
    for j, e in enumerate(edges):
        by_unit.setdefault(unit_ix[e["unit"]], []).append(j)
    for js in by_unit.values():
        rows += [r] * len(js); cols += js; vals += [1] * len(js); lb.append(0); ub.append(1); r += 1
    for j, e in enumerate(edges):
        rows += [r, r]; cols += [j, ne + pair_ix[(e["centre"], e["hospital"])]]; vals += [1, -1]; lb.append(-np.inf); ub.append(0); r += 1
    if stewardship:
        # At most `limit` limited units per order.
        for i, o in enumerate(orders):
            js = [j for j, e in enumerate(edges) if order_ix[e["order"]] == i and e["limited"]]
            if js and o["limit"] is not None:
                rows += [r] * len(js); cols += js; vals += [1] * len(js); lb.append(0); ub.append(o["limit"]); r += 1
        # x_e <= sum of x at f's unit; when f is limited and e is not, the rule lapses once the
        # order holds its limit: x_e - sum x_f - L_o / limit <= 0.
        limits = {o["id"]: o["limit"] for o in orders}
        for j, k in preferences(inst, edges):
            e, f = edges[j], edges[k]
            row_cols, row_vals = [j], [1.0]
            for g in by_unit[unit_ix[f["unit"]]]:
                row_cols.append(g); row_vals.append(-1.0)
            if f["limited"] and not e["limited"] and limits[e["order"]] is not None:
                for g, h in enumerate(edges):
                    if h["order"] == e["order"] and h["limited"]:
                        row_cols.append(g); row_vals.append(-1.0 / limits[e["order"]])
            rows += [r] * len(row_cols); cols += row_cols; vals += row_vals; lb.append(-np.inf); ub.append(0); r += 1
    a = coo_matrix((vals, (rows, cols)), shape=(r, ne + npairs)).tocsr()
    res = milp(c, constraints=LinearConstraint(a, lb, ub), integrality=np.ones(ne + npairs),
               bounds=Bounds(0, 1), options={"time_limit": 60, "mip_rel_gap": 0})
    if res.status != 0:
        raise RuntimeError(f"MILP not solved to optimality: {res.message}")
    chosen = [{"order": edges[j]["order"], "unit": edges[j]["unit"]} for j in range(ne) if res.x[j] > 0.5]
    return chosen, res.fun


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bloodmatch", required=True)
    ap.add_argument("--instances", type=int, default=70)
    ap.add_argument("--cut-instances", type=int, default=30, help="instances with lists cut to one candidate per unit")
    ap.add_argument("--first", type=int, default=0, help="first instance number (seed 1000 + it)")
    ap.add_argument("--tolerance", type=float, default=0.01)
    ap.add_argument("--hard-limit", type=float, default=0.05)
    ap.add_argument("--allowed-misses", type=float, default=0.0, help="fraction of instances allowed above --tolerance")
    args = ap.parse_args()
    worst, greedy_gaps, failures, misses, gaps, proven = 0.0, [], [], [], [], 0
    beyond_cut, cut_lists, candidate_claims, beyond_initial = 0, 0, 0, 0
    rule_binds, price, replaced, breached = 0, [], 0, 0
    runs = [(k, False) for k in range(args.first, args.first + args.instances)] + \
           [(k, True) for k in range(args.first, args.first + args.cut_instances)]
    for k, cut in runs:
        seed = (5000 if cut else 1000) + k
        size = dict(centres=3 + k % 3, hospitals=2 + k % 3, units=50 + (k * 17) % 90, orders=6 + k % 7,
                    **{"max-quantity": 2 + k % 3, "shipment-cost": [60, 120, 240, 480][k % 4], "spread-km": [150, 300, 600][k % 3]})
        if cut:
            size.update({"candidates-per-unit": 1, "minimum-candidates": 0})
        cmd = [args.bloodmatch, "batch", "solve", "--seed", str(seed)] + [x for kv in size.items() for x in (f"--{kv[0]}", str(kv[1]))]
        inst = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        opt_chosen, _ = exact(inst)
        opt_cost, opt_served = objective(inst, opt_chosen)
        free_chosen, _ = exact(inst, stewardship=False)
        free_cost, _ = objective(inst, free_chosen)
        if breaches(inst, free_chosen):
            rule_binds += 1
        price.append((opt_cost - free_cost) / max(abs(free_cost), 1))
        plan_edges = {(e["order"], e["unit"]) for e in inst["plan_edges"]}
        cand_chosen, _ = exact(inst, only=plan_edges, stewardship=False)
        cand_cost, _ = objective(inst, cand_chosen)
        if any((c["order"], c["unit"]) not in plan_edges for c in opt_chosen) and cand_cost > opt_cost + 1:
            beyond_cut += 1
        cut_lists += 1 if inst["orders_with_cut_lists"] > 0 else 0
        if cut:
            # The initial lists of this family hold about each order's quantity of its cheapest units:
            # count instances whose optimum uses a unit beyond that (the family is not vacuous).
            quantity = {o["id"]: o["quantity"] for o in inst["orders"]}
            cheapest = {}
            for e in sorted(inst["edges"], key=lambda e: e["cost"]):
                if len(cheapest.setdefault(e["order"], [])) < quantity[e["order"]]:
                    cheapest[e["order"]].append(e["unit"])
            if any(c["unit"] not in cheapest.get(c["order"], []) for c in opt_chosen):
                beyond_initial += 1
        try:
            our_cost, our_served = objective(inst, inst["chosen"])
            greedy_cost, greedy_served = objective(inst, inst["greedy"])
        except AssertionError as error:
            failures.append(f"seed {seed}: {error}")
            continue
        replaced += inst["stewardship_replacements"]
        ours_breach = breaches(inst, inst["chosen"])
        if ours_breach:
            breached += 1
            failures.append(f"seed {seed}: {len(ours_breach)} allocation(s) break the stewardship rules: {ours_breach[:3]}")
        gap = (our_cost - opt_cost) / max(abs(opt_cost), 1)
        ggap = (greedy_cost - opt_cost) / max(abs(opt_cost), 1)
        greedy_gaps.append(ggap if greedy_served == opt_served else float("nan"))
        worst = max(worst, gap)
        status = "ok"
        if our_served != opt_served:
            status = f"FAIL served {our_served} vs optimum {opt_served}"
        elif gap > args.hard_limit:
            status = f"FAIL gap {gap:.4%}"
        elif gap > args.tolerance:
            status = f"over 1 %: gap {gap:.4%}"
            misses.append(seed)
        gaps.append(gap)
        # The whole-problem claims, on every instance.
        bound = inst["lower_bound_minutes"]
        if bound is None:
            status = "FAIL no lower bound stated"
        elif bound * 100 > opt_cost + 1:
            status = f"FAIL stated lower bound {bound:.2f} above the optimum {opt_cost / 100:.2f}"
        if inst["proven_optimal"] and our_cost > opt_cost + 1:
            status = f"FAIL said proven optimal at {our_cost / 100:.2f}, optimum {opt_cost / 100:.2f}"
        # The candidate-level claims, against the optimum over the plan's own candidate edges.
        cbound = inst["candidate_lower_bound_minutes"]
        if cbound is not None and cbound * 100 > cand_cost + 1:
            status = f"FAIL candidate lower bound {cbound:.2f} above the candidate optimum {cand_cost / 100:.2f}"
        if inst["proven_optimal_over_candidates"] and our_cost > cand_cost + 1:
            status = f"FAIL said proven optimal over its candidates at {our_cost / 100:.2f}, candidate optimum {cand_cost / 100:.2f}"
        candidate_claims += 1
        proven += 1 if inst["proven_optimal"] else 0
        if status.startswith("FAIL"):
            failures.append(f"seed {seed}: {status}")
        print(f"seed {seed}{' (cut)' if cut else ''}: edges {len(inst['edges'])}/{len(plan_edges)} optimum {opt_cost / 100:.1f} min, optimiser {our_cost / 100:.1f} "
              f"(gap {gap:.3%}), greedy {greedy_cost / 100:.1f} (gap {ggap:.2%}{'' if greedy_served == opt_served else ', serves fewer'}) {status}")
    valid = [g for g in greedy_gaps if g == g]
    if len(misses) > args.allowed_misses * len(runs):
        failures.append(f"{len(misses)} instances above {args.tolerance:.0%}: {misses}")
    if args.cut_instances >= 10 and beyond_initial == 0:
        failures.append("no cut instance has its optimum beyond the orders' initial lists: the family tests nothing")
    if rule_binds == 0:
        failures.append("the stewardship rules bind on no instance (no unconstrained optimum breaks them): the check tests nothing")
    print(json.dumps({"instances": len(runs), "with_cut_lists": cut_lists,
                      "unconstrained_optimum_breaks_stewardship": rule_binds, "plans_breaking_stewardship": breached,
                      "stewardship_replacements": replaced,
                      "mean_price_of_stewardship_percent": round(100 * sum(price) / max(1, len(price)), 3),
                      "worst_price_of_stewardship_percent": round(100 * max(price, default=0), 3), "optimum_beyond_the_final_candidates": beyond_cut,
                      "cut_instances_with_optimum_beyond_initial_lists": beyond_initial,
                      "candidate_claims_checked": candidate_claims, "worst_optimiser_gap_percent": round(worst * 100, 3),
                      "mean_optimiser_gap_percent": round(100 * sum(gaps) / max(1, len(gaps)), 3),
                      "within_1_percent": len(gaps) - len(misses), "proven_optimal_by_optimiser": proven,
                      "mean_greedy_gap_percent": round(100 * sum(valid) / max(1, len(valid)), 2),
                      "greedy_serves_fewer": len(greedy_gaps) - len(valid), "failures": len(failures)}))
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

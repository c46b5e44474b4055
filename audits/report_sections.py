"""HTML sections of the report for the forget measures (with bootstrap intervals) and the
adversarial attacks; `render_html` appends them when the report holds their data."""

from __future__ import annotations

import html

from audits.plots_adversarial import (
    icl_curves,
    kway_bars,
    lens_heatmap,
    lens_lines,
    probe_lines,
    relearn_curves,
    template_bars,
)


def _fig(fig) -> str:
    return '<div class="fig">' + fig.to_html(full_html=False, include_plotlyjs=False,
                                             config={"responsive": True}) + "</div>"


def forget_section(data: dict, table) -> str:
    """Truth ratio, MIA AUC / PrivLeak, knowledge gap closed, and the intervals table."""
    fm = data.get("forget_measures") or {}
    parts = []
    if fm:
        names = list(data["models"])
        keys = ("truth_ratio", "truth_ratio_forget_quality", "mia_auc", "privleak",
                "knowledge_gap_closed")
        rows = [[k] + [data["models"][n]["scores"].get(k) for n in names] for k in keys]
        parts.append(
            "<h2>Forget measures vs the reference</h2><p class=\"note\">truth ratio: mean of "
            "P(distractor)/P(correct), per-token normalised (TOFU; ~1 = cannot tell); its forget "
            "quality is the KS p-value against the reference's ratios. mia_auc: Min-K% prob AUC "
            "of target passages vs held-out text; privleak = (AUC - AUC_reference) / "
            "AUC_reference (MUSE; 0 = like the reference). knowledge_gap_closed = (original - "
            "model) / (original - reference) on probability familiarity (1 = forgot as much as "
            "the reference).</p>" + table(["score", *names], rows))
        mia = fm.get("mia") or {}
        if mia:
            mrows = [[n, r["auc"].get("loss"), r["auc"].get("min_k"), r["auc"].get("zlib"),
                      r["n_members"], r["n_nonmembers"]] for n, r in mia.items()]
            parts.append(table(["model", "AUC loss", "AUC Min-K%", "AUC zlib", "members",
                                "non-members"], mrows))
        gaps = fm.get("knowledge_gap_closed") or {}
        if gaps:
            gkeys = sorted({k for g in gaps.values() for k in g})
            parts.append("<p>Knowledge gap closed per probe set</p>" + table(
                ["model", *gkeys], [[n, *[g.get(k) for k in gkeys]] for n, g in gaps.items()]))
    iv = data.get("intervals") or {}
    rows = [[n, k, v["mean"], v["ci_low"], v["ci_high"], v["n"]]
            for n, sc in iv.items() for k, v in sc.items() if v.get("mean") is not None]
    if rows:
        parts.append("<h2>95% bootstrap intervals</h2>" + table(
            ["model", "score", "mean", "low", "high", "n"], rows, 2))
    return "".join(parts)


def adversarial_section(data: dict, table) -> str:
    """Clean vs attacked scores per model, then one block per attack with its plots."""
    adv = data.get("adversarial") or {}
    if not adv:
        return ""
    names = list(adv.get("scores") or {})
    keys = ["probability_familiarity", *adv.get("keys", {})]
    rows = [[k] + [(data["models"].get(n) or {}).get("scores", {}).get(k) for n in names]
            for k in keys]
    att = adv.get("attacks") or {}
    parts = ["<h2>Adversarial attacks: clean vs attacked</h2><p class=\"note\">Each attack "
             "tries to get the target's answers back; compare every model with the reference "
             "(never trained on the target). probability_familiarity is the clean score.</p>",
             table(["score", *names], rows)]
    skipped = adv.get("skipped") or []
    if skipped:
        parts.append("<p class=\"note\">skipped: " + html.escape("; ".join(skipped)) + "</p>")
    if att.get("relearn"):
        split = adv.get("relearn_split") or {}
        parts.append(f"<h3>Finetune relearning</h3><p class=\"note\">{split.get('paragraphs')} "
                     f"paragraphs; {len(split.get('heldout', []))} held-out probes (answers "
                     f"absent from them), {len(split.get('trained', []))} relearned.</p>")
        parts.append(_fig(relearn_curves(att["relearn"])))
    if att.get("icl"):
        parts.append("<h3>In-context relearning</h3>" + _fig(icl_curves(att["icl"])))
    if att.get("kway"):
        parts.append("<h3>Many-way choice</h3>" + _fig(kway_bars(att["kway"])))
    for attack, title in (("framing", "Framing / jailbreak templates"),
                          ("prompting", "Prompting baseline (forget instructions)")):
        if att.get(attack):
            parts.append(f"<h3>{title}</h3>" + _fig(template_bars(att[attack], title)))
    if att.get("variants"):
        forms = sorted({f for r in att["variants"].values() for f in r["per_variant"]})
        vrows = [[f] + [(att["variants"][n]["per_variant"].get(f) or {}).get("familiarity")
                        for n in att["variants"]] for f in forms]
        parts.append("<h3>Paraphrase and form variants</h3>" +
                     table(["variant", *att["variants"]], vrows))
    if att.get("lens"):
        parts.append("<h3>Logit lens</h3>" + _fig(lens_lines(att["lens"])))
        parts += [_fig(lens_heatmap(n, r)) for n, r in att["lens"].items()]
    if att.get("probe"):
        parts.append("<h3>Linear probe per layer</h3>" + _fig(probe_lines(att["probe"])))
    if att.get("suffix"):
        srows = [[n, r["best_text"], r["start_prob"], r["best_prob"], r["text_prob"],
                  r["heldout_start_prob"], r["heldout_best_prob"], r["steps"]]
                 for n, r in att["suffix"].items()]
        parts.append("<h3>Adversarial string search</h3>" + table(
            ["model", "best string", "start p", "best p", "as text p", "held-out start p",
             "held-out best p", "steps"], srows, 2))
    return "".join(parts)

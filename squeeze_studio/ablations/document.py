"""``docs/ablations.md`` from the ablation results: every table beside the paper's numbers, the figures, and
what agrees. Every figure in it is read from the results; nothing is typed in by hand but the paper's."""
from __future__ import annotations

import shutil
from pathlib import Path

from ..eval.figures import plot_tradeoff
from .variants import (
    DEFAULT,
    GUIDANCES,
    JOINT,
    MLLM_ONLY,
    SMOOTH_GRID,
    SMOOTH_PAIRS,
    TAU_GRID,
    VAE_ONLY,
    VARIANTS,
    Budget,
)

# The paper's DreamBench DINO / CLIP-I / CLIP-T per ablation (arXiv 2605.26111, its ablation table)
PAPER = {
    "dla": (0.7482, 0.8443, 0.3010),
    "last_layer": (0.6566, 0.8128, 0.2893),
    "lap": (0.7524, 0.8502, 0.2878),
    "single_stage": (0.7184, 0.8245, 0.2971),
    "no_stages": (0.6905, 0.8225, 0.3044),
}
ATTRIBUTES = ("background", "position", "scale", "orientation", "count")
LABELS = {v.name: v.label for v in VARIANTS}


def _f(value, digits=2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _block(result: dict | None, setting, cfg) -> dict:
    """One setting's results in a variant's evaluation; empty when it was not run."""
    return result["reports"].get(f"{cfg:g}", {}).get("results", {}).get(setting.name) or {} if result else {}


def _synth(result: dict | None, setting=DEFAULT, cfg=GUIDANCES[0]) -> dict | None:
    return _block(result, setting, cfg).get("synth")


def _seconds(result, setting=DEFAULT, cfg=GUIDANCES[0]):
    return _block(result, setting, cfg).get("seconds_per_image")


def _row(name: str, synth: dict | None, paper=None) -> str:
    if synth is None:
        return f"| {name} | " + " | ".join(["not run yet"] + ["–"] * (9 + (paper is not False))) + " |"
    cells = [_f(synth["subject_psnr"]), _f(synth["identity_retrieval"]["top1"], 3),
             _f(synth["adherence_instructed"], 3)]
    cells += [_f(synth["adherence"].get(a), 2) for a in ATTRIBUTES]
    cells += [_f(synth["copy_paste"]["rate"], 3), _f(synth["psnr"])]
    if paper is not False:
        cells.append(" / ".join(f"{x:.4f}" for x in paper) if paper else "–")
    return f"| {name} | " + " | ".join(cells) + " |"


def _header(paper: bool = True) -> str:
    columns = ["variant", "subject PSNR", "id top-1", "adherence", *ATTRIBUTES, "copy-paste", "PSNR"]
    columns += ["paper DINO / CLIP-I / CLIP-T"] if paper else []
    return "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)


def _compare(ours_a, ours_b, paper_a, paper_b, a: str, b: str) -> str:
    """One sentence: does the direction of (a - b) on identity and on adherence agree with the paper's?"""
    if ours_a is None or ours_b is None:
        return f"{a} against {b}: not run yet."
    d_id = ours_a["subject_psnr"] - ours_b["subject_psnr"]
    d_ad = ours_a["adherence_instructed"] - ours_b["adherence_instructed"]
    p_id, p_ad = paper_a[0] - paper_b[0], paper_a[2] - paper_b[2]
    agree = [name for name, ours, paper in (("identity", d_id, p_id), ("adherence", d_ad, p_ad))
             if round(ours, 3) != 0 and (ours > 0) == (paper > 0)]  # no measured difference agrees with nothing
    verdict = ("agrees with the paper on both" if len(agree) == 2 else
               f"agrees with the paper on {agree[0]} only" if agree else "disagrees with the paper on both")
    return (f"{a} against {b}: subject PSNR {d_id:+.2f} dB, adherence {d_ad:+.3f} (paper: DINO {p_id:+.4f}, "
            f"CLIP-T {p_ad:+.4f}); this {verdict}.")


def write_document(results: dict, extras: dict, out: str | Path, budget: Budget, command: str, machine: str,
                   mllm_quality: dict | None = None) -> Path:
    out = Path(out)
    figures = out / "ablations"
    figures.mkdir(parents=True, exist_ok=True)
    get = results.get
    lines = ["# Ablations on SynthSubjects", "",
             "Regenerate everything below (resumable; progress on stderr):", "", "```bash", command, "```", "",
             *_preamble(results, extras, budget, machine), ""]

    lines += ["## 1. Connector (paper Table 6)", "",
              f"All at the paper's default stages ({DEFAULT.name}), CFG {GUIDANCES[0]:g}.", "", _header()]
    lines += [_row(LABELS[n], _synth(get(n)), PAPER[n]) for n in ("dla", "last_layer", "lap")]
    lines += ["", "- " + _compare(_synth(get("dla")), _synth(get("last_layer")), PAPER["dla"], PAPER["last_layer"],
                                  "DLA", "last layer"),
              "- " + _compare(_synth(get("dla")), _synth(get("lap")), PAPER["dla"], PAPER["lap"], "DLA", "single LAP"),
              "- A likely reason for any difference: the demo MLLM is random and frozen, so no layer holds better "
              "features than another the way a pretrained InternVL3's middle layers do; what a pooled connector can "
              "gain here is normalisation and mixing, not selection.", ""]

    lines += ["## 2. Training schedule (paper Table 7)", "",
              f"Same budget; single-stage variants train with reference tokens from the first step. At {DEFAULT.name}.",
              "", _header()]
    lines += [_row(LABELS["single_stage"], _synth(get("single_stage")), PAPER["single_stage"]),
              _row(LABELS["single_stage_aware"], _synth(get("single_stage_aware")), None),
              _row(LABELS["dla"], _synth(get("dla")), PAPER["dla"])]
    lines += ["", "- " + _compare(_synth(get("dla")), _synth(get("single_stage")), PAPER["dla"],
                                  PAPER["single_stage"], "two-stage", "single-stage"),
              "- " + _difference(_synth(get("single_stage_aware")), _synth(get("single_stage")),
                                 "timestep-aware single-stage", "plain single-stage") + " The paper gives no number "
              "for this row.", ""]

    lines += _tau_table(get("dla"))
    lines += _baselines(get("dla"))
    lines += _copy_paste(get("dla"), extras.get("induced"))
    lines += _smooth(extras["smooth"]) if "smooth" in extras else []
    lines += _pretrained_mllm(results, mllm_quality, budget)
    lines += _figures(results, figures)
    path = out / "ablations.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _preamble(results: dict, extras: dict, budget: Budget, machine: str) -> list[str]:
    seconds = {n: r["seconds"] for n, r in results.items() if r}
    extra_seconds = sum(e["seconds"] for e in extras.values())
    total = sum(s["train"] + s["eval"] for s in seconds.values()) + extra_seconds
    first = next((r for r in results.values() if r), None)
    examples = first["reports"][f"{GUIDANCES[0]:g}"]["counts"]["examples"] if first else budget.eval_count
    lines = [f"- Machine: {machine}.",
             f"- Budget per training variant: {budget.steps} optimiser steps at the demo recipe's batch size "
             f"(two-stage: {budget.align_steps} of them stage 1). The same data and VAE for all, and the same "
             "frozen random MLLM for all but the stage-0b variant (section 7).",
             f"- Test set: {examples} unseen SynthSubjects test subjects (attribute combinations never seen in "
             "training), 20 steps, seed 0 + example index, the same noise for every variant and setting.",
             f"- Time: {total / 60:.1f} min of training and evaluation (wall clock; other jobs may have shared the "
             f"machine) for the {len(seconds)} variants run (data, VAE and encodings are made once before them and "
             "not counted)."]
    lines += [f"  - {LABELS[n]}: train {s['train'] / 60:.1f} min, eval {s['eval'] / 60:.1f} min"
              for n, s in seconds.items()]
    lines += [f"  - extra evaluation ({', '.join(extras)}): {extra_seconds / 60:.1f} min"] if extras else []
    missing = [LABELS[v.name] for v in VARIANTS if not results.get(v.name)]
    if missing:
        lines.append(f"- **Not run yet:** {'; '.join(missing)}. Rerun the command to continue.")
    return lines


def _tau_table(dla: dict | None) -> list[str]:
    lines = ["## 3. Stage thresholds (paper Table C)", "", "The DLA two-stage variant.", "",
             "| τ1 / τ2 | CFG | subject PSNR | id top-1 | adherence | copy-paste | PSNR | s / image | "
             "paper DINO / CLIP-I / CLIP-T (CFG 2.5) |",
             "|---|---|---|---|---|---|---|---|---|"]
    paper = {MLLM_ONLY.name: PAPER["no_stages"], DEFAULT.name: PAPER["dla"]}
    for cfg in GUIDANCES:
        for setting in TAU_GRID:
            synth = _synth(dla, setting, cfg)
            theirs = paper.get(setting.name) if cfg == GUIDANCES[0] else None
            theirs = " / ".join(f"{x:.4f}" for x in theirs) if theirs else "–"
            if synth is None:
                lines.append(f"| {setting.label} | {cfg:g} | not run yet | – | – | – | – | – | {theirs} |")
                continue
            lines.append(f"| {setting.label} | {cfg:g} | {_f(synth['subject_psnr'])} | "
                         f"{_f(synth['identity_retrieval']['top1'], 3)} | {_f(synth['adherence_instructed'], 3)} | "
                         f"{_f(synth['copy_paste']['rate'], 3)} | {_f(synth['psnr'])} | "
                         f"{_f(_seconds(dla, setting, cfg), 3)} | {theirs} |")
    lines += ["", "Seconds per image are denoise + decode after the MLLM encoding; MLLM-only steps skip the "
              "reference tokens and VAE-focused steps skip guidance, so both are cheaper. The paper's Table C is "
              "not in our design brief; its numbers for MLLM-only throughout and for its default are.", ""]
    return lines


def _baselines(dla: dict | None) -> list[str]:
    lines = ["## 4. Baselines", "", f"At CFG {GUIDANCES[0]:g}, on the DLA two-stage model where one is needed.", "",
             _header(paper=False)]
    copy = dla["reports"][f"{GUIDANCES[0]:g}"]["baselines"]["copy_reference"]["synth"] if dla else None
    lines += [_row("return a reference unchanged", copy, False),
              _row(f"MLLM only ({MLLM_ONLY.name})", _synth(dla, MLLM_ONLY), False),
              _row(f"VAE only ({VAE_ONLY.name}: null instruction from the second step)", _synth(dla, VAE_ONLY), False),
              _row(f"the method ({DEFAULT.name})", _synth(dla), False), ""]
    return lines


def _copy_paste(natural: dict | None, induced: dict | None) -> list[str]:
    lines = ["## 5. Copy-paste, natural and induced", "",
             "Copy-paste rate: the share of outputs whose subject keeps the reference's pose or placement when the "
             "instruction asked for another. Natural: the DLA two-stage model. Induced: the copy-rich variant, "
             "trained on data where half the targets keep the reference's pose and placement, tested on the same "
             f"instructions. CFG {GUIDANCES[0]:g}.", "",
             "| τ1 / τ2 | natural copy-paste | natural subject PSNR | induced copy-paste | induced subject PSNR |",
             "|---|---|---|---|---|"]
    induced_results = induced["report"]["results"] if induced else {}

    def cells(synth):
        return f"{_f(synth and synth['copy_paste']['rate'], 3)} | {_f(synth and synth['subject_psnr'])}"

    for setting in TAU_GRID:
        theirs = induced_results.get(setting.name, {}).get("synth")
        lines.append(f"| {setting.label} | {cells(_synth(natural, setting))} | {cells(theirs)} |")
    joint = induced_results.get(JOINT.name, {}).get("synth")
    staged = induced_results.get(DEFAULT.name, {}).get("synth")
    if joint and staged and joint["copy_paste"]["rate"] is not None and staged["copy_paste"]["rate"] is not None:
        rate_ok = staged["copy_paste"]["rate"] <= joint["copy_paste"]["rate"] / 2
        ratio = staged["subject_psnr"] / joint["subject_psnr"]
        lines += ["", f"Target (induced): the paper's stages at most half the joint copy-paste rate — "
                      f"**{'met' if rate_ok else 'not met'}** ({staged['copy_paste']['rate']:.3f} vs "
                      f"{joint['copy_paste']['rate']:.3f}); subject fidelity at most 10 % worse — "
                      f"**{'met' if ratio >= 0.9 else 'not met'}** (subject PSNR {staged['subject_psnr']:.2f} vs "
                      f"{joint['subject_psnr']:.2f} dB, {100 * (ratio - 1):+.1f} %)."]
        if not rate_ok:
            plans = {x["name"]: x["stages"] for x in induced["report"]["settings"]}
            rates = ", ".join(f"{s.name}: {induced_results[s.name]['synth']['copy_paste']['rate']:.3f}"
                              for s in TAU_GRID if induced_results.get(s.name, {}).get("synth"))
            lines.append(f"Why not, measured: the induced model copies in {joint['copy_paste']['rate']:.1%} of the "
                         f"eligible cases with references at every step. The paper's default ({DEFAULT.name}) "
                         f"plans the steps as {plans.get(DEFAULT.name)}: references are absent only before τ1. "
                         f"Copy-paste by setting: {rates}.")
            vae_only = induced_results.get(VAE_ONLY.name, {}).get("synth")
            if vae_only and vae_only["copy_paste"]["rate"] is not None:
                more = vae_only["copy_paste"]["rate"] > joint["copy_paste"]["rate"]
                lines.append(f"With the instruction dropped from the second step ({VAE_ONLY.label}) the rate is "
                             f"{vae_only['copy_paste']['rate']:.3f}, against {joint['copy_paste']['rate']:.3f} with "
                             "the instruction kept at every step (1/0): " +
                             ("in this model the VAE-focused tail (the default plans "
                              f"{plans.get(DEFAULT.name)}) is where the copying happens, so leaving the references out "
                              "of the steps before τ1 cannot halve it." if more else
                              "the VAE-focused tail does not add copying here."))
    lines.append("")
    return lines


def _difference(ours_a: dict | None, ours_b: dict | None, a: str, b: str) -> str:
    """One sentence: how a differs from b on identity, adherence and copy-paste."""
    if ours_a is None or ours_b is None:
        return f"{a} against {b}: not run yet."
    return (f"{a} against {b}: subject PSNR {ours_a['subject_psnr'] - ours_b['subject_psnr']:+.2f} dB, adherence "
            f"{ours_a['adherence_instructed'] - ours_b['adherence_instructed']:+.3f}, copy-paste "
            f"{ours_a['copy_paste']['rate'] - ours_b['copy_paste']['rate']:+.3f}.")


def _smooth(smooth: dict) -> list[str]:
    lines = ["## 6. One step beyond the paper: a smooth reference schedule", "",
             "The hard switch at τ1 replaced by a ramp: across the joint band the reference tokens' attention "
             "logits get a bias log w, w rising linearly from ~0 at τ1 to 1 at τ2 "
             "(`squeeze_studio/backbones/reference_bias.py`, `SqueezePipeline(..., reference_ramp=True)`). Each "
             "step has the same tokens and transformer calls as the hard schedule's; the seconds, timed in the same "
             "run, show what the float-bias attention path adds. DLA two-stage model, CFG "
             f"{GUIDANCES[0]:g}.", "",
             "| τ1 / τ2 | schedule | subject PSNR | id top-1 | adherence | copy-paste | s / image |",
             "|---|---|---|---|---|---|---|"]
    report = smooth["report"]
    outward = inward = 0
    for hard_setting, ramp_setting in zip(SMOOTH_PAIRS, SMOOTH_GRID, strict=True):
        hard_block, ramp = report["results"][hard_setting.name], report["results"][ramp_setting.name]
        hard = hard_block["synth"]
        for name, synth, seconds in (("hard", hard, hard_block["seconds_per_image"]),
                                     ("smooth", ramp["synth"], ramp["seconds_per_image"])):
            lines.append(f"| {hard_setting.name} | {name} | {_f(synth and synth['subject_psnr'])} | "
                         f"{_f(synth and synth['identity_retrieval']['top1'], 3)} | "
                         f"{_f(synth and synth['adherence_instructed'], 3)} | "
                         f"{_f(synth and synth['copy_paste']['rate'], 3)} | {_f(seconds, 3)} |")
        if hard and hard["copy_paste"]["rate"] is not None and ramp["synth"]["copy_paste"]["rate"] is not None:
            d_id = round(ramp["synth"]["subject_psnr"] - hard["subject_psnr"], 2)  # as printed: no float noise
            d_copy = round(ramp["synth"]["copy_paste"]["rate"] - hard["copy_paste"]["rate"], 3)
            outward += d_id >= 0 and d_copy <= 0 and (d_id > 0 or d_copy < 0)
            inward += d_id <= 0 and d_copy >= 0 and (d_id < 0 or d_copy > 0)
    verdict = ("moves the identity / copy-paste curve outward" if outward > inward and not inward else
               "does not move the identity / copy-paste curve outward")
    lines += ["", f"Of {len(SMOOTH_PAIRS)} pairs, the ramp is better on both axes (or better on one, equal on the "
                  f"other) in {outward} and worse in {inward}: it {verdict} at equal cost"
                  + (", so it stays an option (`reference_ramp`), off by default." if outward > inward and not inward
                     else ", so it is not adopted; the pipeline keeps it only as an option for this measurement."), ""]
    return lines


def _pretrained_mllm(results: dict, quality: dict | None, budget: Budget) -> list[str]:
    lines = ["## 7. Stage 0b: a pre-trained MLLM against a random one", "",
             "Not a paper table (the paper's MLLM arrives pre-trained; the demo's is a random tiny Qwen2.5-VL). This "
             "variant first trains the MLLM to caption SynthSubjects training images and answer questions about them "
             f"(`squeeze_studio/train/mllm.py`, {budget.mllm_steps} steps, made once like the VAE and not counted in "
             "the equal budget), freezes it, then trains exactly like the DLA two-stage variant. "
             f"CFG {GUIDANCES[0]:g}.", "", _header(paper=False).replace("| variant |", "| variant, τ1 / τ2 |", 1)]
    lines += [_row(f"{LABELS[n]}, {setting.name}", _synth(results.get(n), setting), False)
              for n in ("dla", "pretrained_mllm") for setting in (DEFAULT, JOINT)]
    ours, base = _synth(results.get("pretrained_mllm")), _synth(results.get("dla"))
    lines += ["", "- " + _difference(ours, base, "pre-trained MLLM", f"random MLLM, at {DEFAULT.name}")]
    if ours and base:
        changes = {name: round(ours[key] - base[key], 2) for name, key in
                   (("identity", "subject_psnr"), ("adherence", "adherence_instructed"))}
        gains = [name for name, change in changes.items() if change > 0]
        costs = [name for name, change in changes.items() if change < 0]
        lines.append("- " + ("Pre-training does not earn its place at this budget: neither identity nor adherence "
                             "improves." if not gains else
                             f"Pre-training helps {' and '.join(gains)}"
                             + (f" and costs {' and '.join(costs)}: a trade, not a free gain." if costs else ".")))
    if quality and "trained" in quality:
        lines += ["", f"Did the MLLM learn to see? Pre-training took {quality['seconds'] / 60:.1f} min. Exact answers "
                      f"on {quality['questions']} questions about held-out validation images (an answer counts when "
                      "greedy decoding gives it word for word):", "",
                  "| question | always the most frequent answer | random MLLM | pre-trained MLLM |",
                  "|---|---|---|---|"]
        lines += [f"| {kind} | {_f(quality['majority'][kind], 3)} | {_f(quality['random'][kind], 3)} | "
                  f"{_f(quality['trained'][kind], 3)} |" for kind in quality["trained"]]
        seen = [k for k, v in quality["trained"].items() if v > quality["majority"][k] + 0.05]
        blind = [k for k in quality["trained"] if k not in seen]
        lines += ["", f"It learned to answer {', '.join(seen) or 'nothing'} beyond the blind answer; on "
                      f"{', '.join(blind) or 'nothing'} it is no better than always giving the most frequent answer."]
    return lines + [""]


def _figures(results: dict, folder: Path) -> list[str]:
    lines = ["## Figures", ""]
    dla = results.get("dla")
    if dla:
        for cfg in GUIDANCES:
            report = dla["reports"].get(f"{cfg:g}")
            if report:
                path = plot_tradeoff(report, folder / f"tradeoff-cfg{cfg:g}.png")
                lines += [f"τ trade-off, DLA two-stage, CFG {cfg:g}:", "",
                          f"![tau trade-off](ablations/{path.name})", ""]
    lines += ["Example outputs per variant, the same first test inputs (reference | target | outputs per setting):",
              ""]
    for name, result in results.items():
        grid = Path(result["grid"]) if result and result.get("grid") else None
        if grid and grid.is_file():
            shutil.copyfile(grid, folder / f"grid-{name}.png")
            lines += [f"{LABELS[name]}:", "", f"![{name}](ablations/grid-{name}.png)", ""]
    return lines

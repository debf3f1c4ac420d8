"""The bench's figures as a table for people, each with its target and whether it is met."""

from __future__ import annotations

from typing import Any

CROP_TARGETS = {"hwd1000": 0.985, "usps": 0.95}
SCENE_TARGETS = {"ordinary": (0.99, 0.97), "hard": (0.90, 0.85)}  # recall, end-to-end
RATIO_TARGET, STARTUP_TARGET_S, RSS_TARGET_MB = 2.0, 1.5, 90.0
REST_TARGET = 2.5  # CPU at rest with the gate on, x a loop that only decodes the frames
STAGES = ("decode", "gray", "detect", "normalize", "classify", "read")


def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def render(f: dict[str, Any]) -> str:
    model = f.get("model", {})
    per_set = f", {f.get('scenes_per_set')} scenes per set" if "scenes" in f else ""
    lines = [f"digit-edge bench — model {model.get('name', '?')} ({model.get('runtime', '?')}){per_set}"
             f"{' (quick)' if f.get('quick') else ''}", ""]
    if "crops" in f:
        c = f["crops"]
        lines += ["Crop path: one digit drawn 60-100 px tall on paper, read by the whole pipeline",
                  f"  {'set':22s}{'ours':>8s}{'bare':>8s}   target",
                  *(f"  {name:22s}{pct(c['ours'][k]['accuracy']):>8s}{pct(c['bare'][k]['accuracy']):>8s}"
                    f"   ≥ {pct(t).strip():6s} {mark(c['ours'][k]['accuracy'] >= t)}"
                    for k, t, name in (("hwd1000", CROP_TARGETS["hwd1000"], "HwD-1000 (1000)"),
                                       ("usps", CROP_TARGETS["usps"], f"USPS test ({c['ours']['usps']['n']})"))),
                  ""]
    if "scenes" in f:
        s = f["scenes"]
        lines += ["Scenes 640x480: recall = true digits found (IoU ≥ 0.5), e2e = found and read right,",
                  "extra = digits read where there are none (per scene), nums = numbers read exactly,",
                  "exact = scenes read perfectly. 'same generator' sets come from edge/bench/scenes.py like the",
                  "tuning ones (tuning-like); 'independent' ones from edge/bench/render2.py, never tuned on",
                  f"  {'set':34s}{'recall':>8s}{'e2e':>8s}{'extra':>7s}{'nums':>8s}{'exact':>8s}  |{'bare':>7s}"
                  f"{'':>8s}  | target recall / e2e",
                  f"  {'':34s}{'':>8s}{'':>8s}{'':>7s}{'':>8s}{'':>8s}  |{'recall':>7s}{'e2e':>8s}  |"]
        for key in s["ours"]:
            o, b = s["ours"][key], s["bare"][key]
            tr, te = SCENE_TARGETS[key.split("/")[0]]
            label = key.replace("/tune", " / tuning").replace("/held", " / held, same generator").replace(
                "/indep", " / independent (held-out)")
            lines.append(f"  {label:34s}{pct(o['recall']):>8s}{pct(o['e2e']):>8s}{o['extra_per_scene']:7.2f}"
                         f"{pct(o.get('numbers_exact', 0.0)):>8s}{pct(o['scenes_exact']):>8s}  |"
                         f"{pct(b['recall']):>7s}{pct(b['e2e']):>8s}  |"
                         f" ≥ {100 * tr:.0f}% {mark(o['recall'] >= tr)} / ≥ {100 * te:.0f}% {mark(o['e2e'] >= te)}")
        lines.append("")
    for key, title in (("hard_kinds", "Hard held-out scenes (same generator) by what makes them hard"),
                       ("indep_kinds", "Hard independent scenes by what makes them hard")):
        if key in f:
            o, b = f[key]["ours"], f[key]["bare"]
            lines += [f"{title} (a scene can have two):",
                      f"  {'kind':12s}{'digits':>7s}{'recall':>8s}{'e2e':>8s}  |{'bare':>7s}{'e2e':>8s}"]
            lines += [f"  {k:12s}{o[k]['digits']:7d}{pct(o[k]['recall']):>8s}{pct(o[k]['e2e']):>8s}  |"
                      f"{pct(b[k]['recall']):>7s}{pct(b[k]['e2e']):>8s}" for k in o]
            lines.append("")
    if "real" in f:
        lines += real_lines(f["real"])
    if "sweeps" in f:
        lines += sweep_lines(f["sweeps"])
    if "speed" in f:
        sp = f["speed"]
        o, b = sp["ours"], sp["bare"]
        scenes = "built-in demo" if f.get("builtin_scenes") else "scene"
        lines += [f"Speed on one core, 640x480 JPEG {scenes} frames (ms per frame, mean of {o['frames']})",
                  f"  {'stage':12s}{'ours':>8s}{'bare':>8s}"]
        lines += [f"  {k:12s}{o.get(k, 0.0):8.2f}{b.get(k, 0.0):8.2f}" for k in STAGES]
        lines += [f"  {'total':12s}{o['total_ms']:8.2f}{b['total_ms']:8.2f}   ratio {sp['ratio']:.2f}x"
                  f"   target ≤ {RATIO_TARGET}x {mark(sp['ratio'] <= RATIO_TARGET)}",
                  f"  {'frames/s':12s}{o['fps']:8.0f}{b['fps']:8.0f}", ""]
    if "startup" in f:
        st = f["startup"]
        p, b = st["predict"], st["bare"]
        lines += ["Start-up and memory (fresh processes)",
                  f"  {'digit-edge predict, one image:':34s}first result {p['first_result_s']:.2f} s"
                  f" (target ≤ {STARTUP_TARGET_S} s {mark(p['first_result_s'] <= STARTUP_TARGET_S)}),"
                  f" peak RSS {p['max_rss_mb']:.0f} MB"]
        for key, what in (("daemon", "100 JPEG frames"), ("daemon_demo", "100 demo frames")):
            if key in st:
                d = st[key]
                lines.append(f"  {'digit-edge run, ' + what + ':':34s}first reading {d['first_result_s']:.2f} s,"
                             f" peak RSS {d['max_rss_mb']:.0f} MB (target ≤ {RSS_TARGET_MB:.0f} MB"
                             f" {mark(d['max_rss_mb'] <= RSS_TARGET_MB)})")
        lines += [f"  {'bare baseline, one image:':34s}first result {b['first_result_s']:.2f} s,"
                  f" peak RSS {b['max_rss_mb']:.0f} MB"]
        lines += [f"  ! {name} exited {v['exit_status']}: {v.get('stderr', '')}" for name, v in st.items()
                  if v["exit_status"] != 0]
        lines.append("")
    if "rest" in f:
        lines += rest_lines(f["rest"])
    if f.get("needs_data"):
        lines += [f"Not run: {', '.join(f['needs_data'])} (accuracy: these need the evaluation data, --data DIR "
                  "with mnist.npz, hwd1000/, usps/)"]
    return "\n".join(lines).rstrip() + "\n"


def rest_lines(r: dict[str, Any]) -> list[str]:
    """CPU at rest against the bare decode loop, and the delay to a change, gate on and off."""
    lines = [f"At rest: `digit-edge run` on a video of a still page ({r['frames']} frames at {r['fps']:g} fps), "
             f"CPU per frame against a loop that only decodes them ({r['decode_ms']:.2f} ms a frame)",
             f"  {'gate':10s}{'CPU ms':>8s}{'ratio':>8s}{'change delay':>22s}"]
    for key, name in (("gate_on", "on"), ("gate_off", "off")):
        g = r[key]
        delay = "-" if g.get("change_frames") is None else f"{g['change_frames']} frames, {g['change_s']:.1f} s"
        target = f"   target ≤ {REST_TARGET}x {mark(g['ratio'] <= REST_TARGET)}" if key == "gate_on" else ""
        lines.append(f"  {name:10s}{g['cpu_ms_per_frame']:8.2f}{g['ratio']:7.2f}x{delay:>22s}{target}")
        if g.get("exit_status"):
            lines.append(f"  ! gate {name}: exited {g['exit_status']}: {g.get('stderr', '')}")
    on, off = r["gate_on"].get("change_frames"), r["gate_off"].get("change_frames")
    if on is not None and off is not None:
        lines.append(f"  the gate adds {on - off} frame(s) to a change (target ≤ 1 {mark(on - off <= 1)})")
    return [*lines, ""]


def real_lines(r: dict[str, Any]) -> list[str]:
    """Real photos and scans, per set: ours, then the bare reader (if it ran)."""
    lines = [f"Real photos and scans ({r['root']}): found / read right (IoU ≥ 0.4), extra digits per image,",
             "numbers read exactly, images read exactly",
             f"  {'set':34s}{'images':>7s}{'digits':>7s}{'found':>8s}{'read':>8s}{'extra':>7s}{'nums':>8s}"
             f"{'exact':>8s}"]
    for reader in ("ours", "bare"):
        for name, v in r.get(reader, {}).items():
            lines.append(f"  {(reader + ': ' + name)[:34]:34s}{v['images']:7d}{v['digits']:7d}{pct(v['recall']):>8s}"
                         f"{pct(v['e2e']):>8s}{v['extra_per_image']:7.2f}{pct(v['numbers_exact']):>8s}"
                         f"{pct(v['scenes_exact']):>8s}")
    return [*lines, ""]


def sweep_lines(sw: dict[str, Any]) -> list[str]:
    """Each condition's levels: digits read right (ours, bare) and numbers exact; ✗ below the level target."""
    t = sw["targets"]
    lines = [f"Sweeps (edge/bench/render2.py, one condition at a time, {sw['digits_per_level']} digits a level): "
             f"read right, ours [bare] numbers-exact; ✗ below {100 * t['level']:.0f}%"]
    for name, c in sw["conditions"].items():
        cells = []
        for row in c["levels"]:
            o = row["ours"]
            bare = f" [{100 * row['bare']['e2e']:.0f}]" if "bare" in row else ""
            low = " ✗" if o["e2e"] < t["level"] else ""
            cells.append(f"{row['label']}: {100 * o['e2e']:.0f}{bare} {100 * o['numbers_exact']:.0f}{low}")
        lines.append(f"  {name}")
        lines.append("      " + " | ".join(cells))
    mean, lowest = sw.get("mean_e2e") or 0.0, sw.get("min_e2e") or 0.0
    lines += [f"  mean over {sw['levels']} levels {pct(mean).strip()} (target ≥ {100 * t['mean']:.0f}% "
              f"{mark(mean >= t['mean'])}), lowest {pct(lowest).strip()}; {len(sw['below_target'])} levels below "
              f"{100 * t['level']:.0f}%", f"  curves: {sw.get('png', '-')}", ""]
    return lines

"""The bench's figures as a table for people, each with its target and whether it is met."""

from __future__ import annotations

from typing import Any

CROP_TARGETS = {"hwd1000": 0.985, "usps": 0.95}
SCENE_TARGETS = {"ordinary": (0.99, 0.97), "hard": (0.90, 0.85)}  # recall, end-to-end
RATIO_TARGET, STARTUP_TARGET_S, RSS_TARGET_MB = 2.5, 1.5, 90.0
STAGES = ("decode", "gray", "detect", "normalize", "classify", "read")


def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def render(f: dict[str, Any]) -> str:
    model = f.get("model", {})
    lines = [f"digit-edge bench — model {model.get('name', '?')} ({model.get('runtime', '?')}), "
             f"{f.get('scenes_per_set')} scenes per set{' (quick)' if f.get('quick') else ''}", ""]
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
                  "extra = digits read where there are none (per scene), exact = scenes read perfectly",
                  f"  {'set':20s}{'recall':>8s}{'e2e':>8s}{'extra':>7s}{'exact':>8s}  |{'bare':>7s}{'':>8s}"
                  f"  | target recall / e2e",
                  f"  {'':20s}{'':>8s}{'':>8s}{'':>7s}{'':>8s}  |{'recall':>7s}{'e2e':>8s}  |"]
        for key in s["ours"]:
            o, b = s["ours"][key], s["bare"][key]
            tr, te = SCENE_TARGETS[key.split("/")[0]]
            label = key.replace("/tune", " / tuning").replace("/held", " / held-out")
            lines.append(f"  {label:20s}{pct(o['recall']):>8s}{pct(o['e2e']):>8s}{o['extra_per_scene']:7.2f}"
                         f"{pct(o['scenes_exact']):>8s}  |{pct(b['recall']):>7s}{pct(b['e2e']):>8s}  |"
                         f" ≥ {100 * tr:.0f}% {mark(o['recall'] >= tr)} / ≥ {100 * te:.0f}% {mark(o['e2e'] >= te)}")
        lines.append("")
    if "hard_kinds" in f:
        o, b = f["hard_kinds"]["ours"], f["hard_kinds"]["bare"]
        lines += ["Hard held-out scenes by what makes them hard (a scene can have two):",
                  f"  {'kind':12s}{'digits':>7s}{'recall':>8s}{'e2e':>8s}  |{'bare':>7s}{'e2e':>8s}"]
        lines += [f"  {k:12s}{o[k]['digits']:7d}{pct(o[k]['recall']):>8s}{pct(o[k]['e2e']):>8s}  |"
                  f"{pct(b[k]['recall']):>7s}{pct(b[k]['e2e']):>8s}" for k in o]
        lines.append("")
    if "speed" in f:
        sp = f["speed"]
        o, b = sp["ours"], sp["bare"]
        lines += [f"Speed on one core, 640x480 JPEG frames (ms per frame, mean of {o['frames']})",
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
    return "\n".join(lines).rstrip() + "\n"
